"""The nemesis (Jepsen's): starts and stops faults on a running System and records each in the history.
Every fault kind maps to a handler in `NEMESES`; one module per family of kinds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import HarnessError
from harness.load import Answered
from harness.nemesis import clients, clock, cluster, containers, disks, links, outage
from harness.nemesis.containers import ContainerControl
from harness.nemesis.links import ProxyControl
from harness.scenario import FAULTS, BaseFault
from harness.topology.plan import Link
from harness.topology.system import System

log = logging.getLogger(__name__)


class NemesisError(HarnessError):
    """A fault could not be started or healed."""


class ActiveFault(Protocol):
    """One fault on the system. `start` applies it; `stop` undoes exactly what `start` did (also a
    partial start), and doing it twice is harmless."""

    target: dict[str, Any]  # what was hit, as the history's start event records it
    # Optional: what the nemesis observed once the fault took effect (the start event's `evidence`), and,
    # for a fault whose effect is counted over its window, once it was healed (the stop event's).
    evidence: dict[str, Any] | None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Controls:
    """What a handler may act on."""

    sut: System
    proxies: ProxyControl
    containers: ContainerControl
    # The intents an agent has answered so far, from the load (for `repeat`).
    answered: Callable[[str], list[Answered]] = lambda agent: []

    @property
    def agents(self) -> int:
        return self.sut.cfg.agents

    @property
    def links(self) -> dict[str, Link]:
        return self.sut.links


# fault kind -> handler making the ActiveFault for a fault of that kind
Handler = Callable[[Controls, Any, str], ActiveFault]
NEMESES: dict[str, Handler] = {
    **links.NEMESES,
    **outage.NEMESES,
    **containers.NEMESES,
    **clients.NEMESES,
    **disks.NEMESES,
    **clock.NEMESES,
    **cluster.handlers(),  # crash, pause, isolate and power-loss, also of a cluster's roles
}
if set(NEMESES) != set(FAULTS):  # a kind added to the scenario model needs its handler here
    raise ImportError(f"nemesis handlers {sorted(NEMESES)} do not match the fault kinds {sorted(FAULTS)}")


@dataclass
class _Entry:
    fault: BaseFault
    active: ActiveFault
    recorded: bool = False  # its start event is in the history, so its stop must be too


class Nemesis:
    """`Nemesis(sut, history.record)`; `await start(fault, "f1")`, `await stop("f1")`, and on every way
    out `await heal_all()` (which also closes the clients it keeps open). `record` receives each nemesis
    event without "t", right after it took effect."""

    def __init__(
        self,
        sut: System,
        record: Callable[[dict[str, Any]], Any],
        answered: Callable[[str], list[Answered]] = lambda agent: [],
    ) -> None:
        self.sut = sut
        self._record = record
        self.controls = Controls(
            sut, ProxyControl(lambda: sut.toxiproxy_url), ContainerControl(sut), answered
        )
        self._active: dict[str, _Entry] = {}

    @property
    def active(self) -> list[str]:
        """The ids of the faults started and not yet healed, oldest first."""
        return list(self._active)

    async def prepare(self) -> None:
        """Before t = 0: what the first fault would otherwise pay for on its own clock (Toxiproxy's client
        and connection, the engine's connection, worker threads). The three faults random-nemesis
        schedules at t = 0 were 77, 115 and 52 ms late without it, 70, 62 and 44 ms with it: what is
        left is the start of the load and the sampler on 2 cores."""
        await asyncio.gather(self.controls.proxies.prepare(), self.controls.containers.prepare())

    async def start(self, fault: BaseFault, fault_id: str, scheduled: float | None = None) -> None:
        """Apply the fault and record its start; `scheduled` is when the schedule asked for it."""
        if fault_id in self._active:
            raise NemesisError(f"fault {fault_id} is already active; stop it first or give a new id")
        entry = _Entry(fault, NEMESES[fault.fault](self.controls, fault, fault_id))
        # Registered before it acts: whatever part took effect is found by stop() and heal_all().
        self._active[fault_id] = entry
        try:
            await entry.active.start()
        except Exception as e:
            try:
                await self.stop(fault_id)
            except Exception as heal_error:
                log.warning("could not undo the failed start of %s: %s", fault_id, heal_error)
            raise NemesisError(f"could not start {fault.fault} {fault_id}: {e}") from e
        extra: dict[str, Any] = {} if scheduled is None else {"scheduled": round(scheduled, 6)}
        extra["target"] = entry.active.target
        if evidence := getattr(entry.active, "evidence", None):
            extra["evidence"] = evidence
        self._record(self._event("start", fault, fault_id, **extra))
        entry.recorded = True

    async def stop(self, fault_id: str) -> None:
        """Heal the fault; an unknown or already healed id is nothing to do."""
        entry = self._active.get(fault_id)
        if entry is None:
            return
        await entry.active.stop()  # on failure the entry stays, for heal_all to retry and net
        self._close(fault_id, entry)

    async def heal_all(self) -> None:
        """Stop every active fault (newest first), then heal whatever is left anyway: every proxy enabled
        without toxics, every paused container resumed, every stopped one started and ready."""
        problems: list[str] = []
        try:
            for fault_id in reversed(self.active):
                try:
                    await self.stop(fault_id)
                except Exception as e:
                    problems.append(f"stop {fault_id}: {e}")
        finally:
            try:
                net_ok = await self._safety_net(problems)
            finally:
                # Every way out of a run heals: the Toxiproxy client ends here (a later call opens another).
                await self.controls.proxies.aclose()
            if net_ok:
                # A fault whose own stop failed is healed by the net all the same.
                for fault_id, entry in list(self._active.items()):
                    self._close(fault_id, entry)
        if problems:
            raise NemesisError("healing left problems: " + "; ".join(problems))

    async def _safety_net(self, problems: list[str]) -> bool:
        ok = True
        try:
            await self.controls.proxies.reset()
        except Exception as e:
            problems.append(f"Toxiproxy reset: {e}")
            ok = False
        try:
            if revived := await self.controls.containers.revive_all():
                log.warning("still down after the faults' own stops, revived: %s", ", ".join(revived))
        except Exception as e:
            problems.append(f"reviving containers: {e}")
            ok = False
        return ok

    def _close(self, fault_id: str, entry: _Entry) -> None:
        if self._active.get(fault_id) is not entry:  # a concurrent stop closed it already
            return
        del self._active[fault_id]
        if entry.recorded:
            extra = {}
            if evidence := getattr(entry.active, "stop_evidence", None):
                extra["evidence"] = evidence
            self._record(self._event("stop", entry.fault, fault_id, **extra))

    @staticmethod
    def _event(f: str, fault: BaseFault, fault_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "process": "nemesis",
            "type": "info",
            "f": f,
            "fault": fault.fault,
            "fault_id": fault_id,
            **extra,
        }


__all__ = ["NEMESES", "ActiveFault", "Controls", "Handler", "Nemesis", "NemesisError"]
