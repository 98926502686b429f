"""Container faults through the Docker engine: crash (kill, later start and wait until ready) and pause
(every process frozen, later resumed)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import TopologyError
from harness.scenario import CrashFault, PauseFault
from harness.topology.services import NATS, SURREALDB, Service
from harness.topology.system import System
from harness.waiting import await_until

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls

# Nodes whose readiness is their service's health endpoint; every other node answers /healthz over HTTP.
SERVICES: dict[str, Service] = {"nats": NATS, "surrealdb": SURREALDB}
DOWN = ("exited", "dead", "created")


class ContainerControl:
    """The nemesis's hands on the engine. Like proxies, a container stopped or paused by several faults
    at once comes back when the last of them stops."""

    def __init__(self, sut: System, ready_timeout: float = 60.0) -> None:
        self.sut = sut
        self.ready_timeout = ready_timeout
        self._killed: Counter[str] = Counter()
        self._paused: Counter[str] = Counter()
        # Per node, so that a count and the container's state change together; other nodes go on meanwhile.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def status(self, node: str) -> str:
        return (await asyncio.to_thread(self.sut.run.raw, node)).status

    async def wait_ready(self, node: str) -> None:
        service = SERVICES.get(node)
        if service is not None:
            await asyncio.to_thread(service.wait_ready, self.sut.run, None, self.ready_timeout)
        else:
            await asyncio.to_thread(self.sut.wait_http, node, self.ready_timeout)

    async def kill(self, node: str) -> None:
        async with self._locks[node]:
            if self._killed[node] == 0:
                ctr = await asyncio.to_thread(self.sut.run.raw, node)
                if ctr.status in ("running", "paused"):
                    await asyncio.to_thread(ctr.kill)

                async def down() -> bool:
                    return await self.status(node) in DOWN

                # The kill is sent at once but takes effect when the engine has reaped the processes.
                await await_until(down, f"{node} to stop after the kill", timeout=30, interval=0.1)
            self._killed[node] += 1

    async def start(self, node: str) -> None:
        async with self._locks[node]:
            if self._killed[node] == 1:
                ctr = await asyncio.to_thread(self.sut.run.raw, node)
                if ctr.status in DOWN:
                    await asyncio.to_thread(ctr.start)
                await self.wait_ready(node)
            self._killed[node] = max(0, self._killed[node] - 1)

    async def restart_if_down(self, node: str) -> bool:
        """Start the node again if it stopped by itself (no kill of ours holds it down), and wait until it
        is ready; whether it had to. A node may stop on a failing disk."""
        async with self._locks[node]:
            if self._killed[node]:
                return False
            ctr = await asyncio.to_thread(self.sut.run.raw, node)
            if ctr.status not in DOWN:
                return False
            await asyncio.to_thread(ctr.start)
            await self.wait_ready(node)
            return True

    async def pause(self, node: str) -> None:
        async with self._locks[node]:
            if self._paused[node] == 0:
                ctr = await asyncio.to_thread(self.sut.run.raw, node)
                if ctr.status == "running":
                    await asyncio.to_thread(ctr.pause)
            self._paused[node] += 1

    async def resume(self, node: str) -> None:
        async with self._locks[node]:
            if self._paused[node] == 1:
                ctr = await asyncio.to_thread(self.sut.run.raw, node)
                if ctr.status == "paused":
                    await asyncio.to_thread(ctr.unpause)
                    await self.wait_ready(node)
            self._paused[node] = max(0, self._paused[node] - 1)

    async def revive_all(self) -> list[str]:
        """Unpause every paused node and start every stopped one, then wait until each is ready; the nodes
        touched. The safety net behind every fault's own stop."""
        self._killed.clear()
        self._paused.clear()
        touched: list[str] = []
        for node in self.sut.nodes:
            ctr = await asyncio.to_thread(self.sut.run.raw, node)
            if ctr.status == "paused":
                await asyncio.to_thread(ctr.unpause)
                touched.append(node)
            elif ctr.status in DOWN:
                await asyncio.to_thread(ctr.start)
                touched.append(node)
        waits = await asyncio.gather(*(self.wait_ready(node) for node in touched), return_exceptions=True)
        failed = [
            f"{node}: {e}" for node, e in zip(touched, waits, strict=True) if isinstance(e, BaseException)
        ]
        if failed:
            raise TopologyError("not ready after the heal: " + "; ".join(failed))
        return touched


@dataclass
class Held:
    """A node held in a state (killed, paused) from start until stop brings it back."""

    hold: Callable[[str], Awaitable[None]]
    release: Callable[[str], Awaitable[None]]
    status: Callable[[str], Awaitable[str]]
    node: str
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None  # the container's state read back after the hold
    _done: bool = False

    async def start(self) -> None:
        await self.hold(self.node)
        self._done = True
        # What the engine says now: the start event shows that the fault bit (docs/run-format.md).
        self.evidence = {"container": self.node, "state": await self.status(self.node)}

    async def stop(self) -> None:
        if self._done:
            await self.release(self.node)
            self._done = False


def killed(containers: ContainerControl, node: str, target: dict[str, Any]) -> Held:
    return Held(containers.kill, containers.start, containers.status, node, target)


def paused(containers: ContainerControl, node: str, target: dict[str, Any]) -> Held:
    return Held(containers.pause, containers.resume, containers.status, node, target)


def crash(ctl: Controls, fault: CrashFault, fault_id: str) -> ActiveFault:
    return killed(ctl.containers, fault.target, {"node": fault.target})


def pause(ctl: Controls, fault: PauseFault, fault_id: str) -> ActiveFault:
    return paused(ctl.containers, fault.target, {"node": fault.target})


NEMESES: dict[str, Callable[[Controls, Any, str], ActiveFault]] = {"crash": crash, "pause": pause}
