"""Faults of the nodes' data directories on faultfs (docs/faultfs.md): power loss (the nodes SIGKILLed,
their unsynced writes dropped, started again), and EIO, ENOSPC or slow fsyncs for a window. Each records
faultfs's counts as its evidence: at the start (what a power loss dropped) and at the stop (what a window's
calls met)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.scenario import DiskErrorFault, DiskFullFault, DiskSlowFault, PowerLossFault

if TYPE_CHECKING:
    from harness.faultfs.control import FaultFS
    from harness.nemesis import ActiveFault, Controls


@dataclass
class PowerLoss:
    """Every target at once: all halted (frozen and SIGKILLed while frozen: the power is off, no process
    runs another instruction), then all their unsynced writes dropped, then let die; at the stop all
    started again and waited for. The start line is written once the writes are dropped: the nodes' exits
    follow it (a Python agent takes 10 to 40 ms to die here, which the start waited for before). Where the
    nemesis cannot freeze (a remote engine), each is killed and seen exited before the drop."""

    ctl: Controls
    nodes: list[str]
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None
    _killed: list[str] = field(default_factory=list)

    async def start(self) -> None:
        containers = self.ctl.containers
        states: dict[str, dict[str, str]] = {}

        async def halt(node: str) -> None:
            states[node] = await containers.halt(node)  # its state once the halt took effect, who saw it
            self._killed.append(node)

        try:
            await asyncio.gather(*(halt(node) for node in self.nodes))
            volumes = [self.ctl.sut.disks.volume(node) for node in self.nodes]
            dropped = await asyncio.gather(*(asyncio.to_thread(fs.lose) for fs in volumes))
        finally:
            for node in self._killed:
                containers.release(node)
        per_node = {
            node: {**states[node], "lost_bytes": lost["dropped_bytes"], "lost_files": lost["files"]}
            for node, lost in zip(self.nodes, dropped, strict=True)
        }
        self.evidence = {
            "nodes": per_node,
            "lost_bytes": sum(n["lost_bytes"] for n in per_node.values()),
            "lost_files": sum(n["lost_files"] for n in per_node.values()),
        }

    async def stop(self) -> None:
        killed, self._killed = self._killed, []
        await asyncio.gather(*(self.ctl.containers.start(node) for node in killed))


# The counts of faultfs's stats a window's evidence is the growth of.
COUNTS = ("enospc", "slowed", "fsyncs")


def _counts(stats: dict[str, Any]) -> dict[str, int]:
    counts = {name: int(stats.get(name, 0)) for name in COUNTS}
    for op, n in (stats.get("failed") or {}).items():
        counts[f"failed_{op}"] = int(n)
    return counts


@dataclass
class DiskWindow:
    """A fault on one node's volume from start to stop: `apply` at the start, `clear` at the stop; the stop
    line's evidence is what faultfs counted meanwhile."""

    ctl: Controls
    node: str
    apply: Callable[[FaultFS], Any]
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None
    stop_evidence: dict[str, Any] | None = None
    _before: dict[str, int] | None = None

    @property
    def fs(self) -> FaultFS:
        return self.ctl.sut.disks.volume(self.node)

    async def start(self) -> None:
        self._before = _counts(await asyncio.to_thread(self.fs.stats))
        await asyncio.to_thread(self.apply, self.fs)
        self.evidence = {"active": (await asyncio.to_thread(self.fs.stats)).get("active")}

    async def stop(self) -> None:
        if self._before is None:
            return
        await asyncio.to_thread(self.fs.clear)
        after = _counts(await asyncio.to_thread(self.fs.stats))
        grew = {k: n - self._before.get(k, 0) for k, n in after.items() if n - self._before.get(k, 0)}
        failed = sum(n for k, n in grew.items() if k.startswith("failed_"))
        self.stop_evidence = {"calls": grew, "failed": failed}
        self._before = None
        # A node that stopped on the failing disk (fail-stop) is started again once the disk is healed.
        if await self.ctl.containers.restart_if_down(self.node):
            self.stop_evidence["restarted"] = self.node


def power_loss(ctl: Controls, fault: PowerLossFault, fault_id: str) -> ActiveFault:
    return PowerLoss(ctl, list(fault.targets), {"nodes": list(fault.targets)})


def _window(ctl: Controls, node: str, apply: Callable[[FaultFS], Any], **target: Any) -> DiskWindow:
    ctl.sut.disks.volume(node)  # fails at once, naming the nodes on faultfs, when this one is not
    return DiskWindow(ctl, node, apply, {"node": node, **target})


def disk_error(ctl: Controls, fault: DiskErrorFault, fault_id: str) -> ActiveFault:
    return _window(ctl, fault.target, lambda fs: fs.fail(fault.op, fault.path), op=fault.op, path=fault.path)


def disk_full(ctl: Controls, fault: DiskFullFault, fault_id: str) -> ActiveFault:
    return _window(ctl, fault.target, lambda fs: fs.full(fault.path), path=fault.path)


def disk_slow(ctl: Controls, fault: DiskSlowFault, fault_id: str) -> ActiveFault:
    ms = max(1, round(fault.delay * 1000))
    return _window(ctl, fault.target, lambda fs: fs.slow(ms, fault.path), path=fault.path, delay_ms=ms)


NEMESES: dict[str, Callable[[Controls, Any, str], ActiveFault]] = {
    "power-loss": power_loss,
    "disk-error": disk_error,
    "disk-full": disk_full,
    "disk-slow": disk_slow,
}
