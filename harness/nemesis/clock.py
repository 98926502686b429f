"""Faults of the agents' and SurrealDB's wall clocks (docs/clock.md): the offset file libfaketime reads in
each at every reading of the clock is replaced on the host (it is bind-mounted), and the node's own clock,
read from an agent's /healthz or SurrealDB's `time::now()`, is waited for until it shows the offset: that
reading is the start line's evidence (a clock that did not move is a fault that did not bite), and the
history's `t` is when it was read. Skew and strobe put the host's clock back at their stop; a jump stays to
the end of the load, where the nemesis heals everything (and a reset between scenarios puts every clock
back)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.http1 import Pool
from harness.scenario import ClockJumpFault, ClockSkewFault, ClockStrobeFault
from harness.scenario.clock_faults import MIN_STROBE_PERIOD_S
from harness.topology.services import surreal_session
from harness.waiting import await_until

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls

SEEN_WITHIN_S = 1.0  # the agent's clock read this close to the offset asked counts as moved
SEEN_TIMEOUT_S = 5.0  # an agent busy or slow to answer /healthz
# SurrealDB's clock is stepped while it is down (a crash's restart: "stepped back across a restart"), so its
# reading waits for the restart too.
SURREAL_SEEN_TIMEOUT_S = 30.0
SURREALDB = "surrealdb"


async def _agent_offset(http: Pool) -> float:
    """The agent's wall clock minus the host's, from its /healthz `clock`."""
    before = time.time()
    status, body = await http.request("GET", "/healthz")
    if status != 200:
        raise RuntimeError(f"/healthz answered {status}")
    return float(json.loads(body)["clock"]) - (before + time.time()) / 2


async def _surreal_offset(url: str) -> float:
    """SurrealDB's wall clock minus the host's, from its own `time::now()` (a read: a write would wait for
    the clock to pass its last versionstamp, docs/analytics.md); 2 s at most, a frozen server included."""

    async def read() -> float:
        async with surreal_session(url) as db:
            before = time.time()
            now = await db.query("RETURN time::now();")
            return now.timestamp() - (before + time.time()) / 2

    return await asyncio.wait_for(read(), 2.0)


async def move(ctl: Controls, nodes: list[str], offset: int) -> dict[str, float]:
    """Every node's clock set `offset` seconds off the host's; waits until each node's own clock shows it
    and returns what each read (seconds off the host's)."""
    if any(n.startswith("agent-") for n in nodes) and not ctl.sut.clock_faults:
        raise RuntimeError(
            "the agents do not run under libfaketime: a system for a scenario with clock faults has it "
            "(SystemConfig.clock), with netsync's image only (not --sut-image)"
        )
    if SURREALDB in nodes and not ctl.sut.cfg.surreal_clock:
        raise RuntimeError("SurrealDB does not run under libfaketime: SystemConfig.surreal_clock is off")
    for node in nodes:
        ctl.sut.set_clock(node, offset)  # a file replaced on the host: no worker thread needed
    seen: dict[str, float] = {}

    async def read(node: str) -> None:
        if node == SURREALDB:  # read by a new session each time: the server may be restarting
            reading: Callable[[], Awaitable[float]] = lambda: _surreal_offset(ctl.sut.surreal_url)  # noqa: E731
            timeout, close = SURREAL_SEEN_TIMEOUT_S, None
        else:
            http = Pool(ctl.sut.http_url(node), size=1, timeout=1.0)
            reading, timeout, close = (lambda: _agent_offset(http)), SEEN_TIMEOUT_S, http.aclose

        async def shows() -> bool:  # a reading that fails (SurrealDB restarting) is tried again
            seen[node] = round(await reading(), 3)
            return abs(seen[node] - offset) < SEEN_WITHIN_S

        try:
            await await_until(shows, f"{node}'s clock to read {offset:+d} s off the host's", timeout)
        finally:
            if close is not None:
                await close()

    await asyncio.gather(*(read(node) for node in nodes))
    return seen


@dataclass
class ClockWindow:
    """The targets' clocks at `offsets[0]` from start; with a `period`, alternating with `offsets[1]`
    until stop; at stop, the host's clock again."""

    ctl: Controls
    nodes: list[str]
    offsets: tuple[int, ...]
    target: dict[str, Any]
    period: float | None = None
    evidence: dict[str, Any] | None = None
    stop_evidence: dict[str, Any] | None = None
    _moved: bool = False
    _strobe: asyncio.Task[None] | None = None
    _switches: int = field(default=0)

    async def start(self) -> None:
        self._moved = True  # from the first write on, stop must put the host's clock back
        self.evidence = {"clock": await move(self.ctl, self.nodes, self.offsets[0])}
        if self.period is not None:
            self._strobe = asyncio.create_task(self._alternate())

    async def _alternate(self) -> None:
        # On a fixed beat from the start: the time each switch waits to be seen does not stretch the period.
        loop, period = asyncio.get_running_loop(), self.period or MIN_STROBE_PERIOD_S
        began, i = loop.time(), 0
        while True:
            i += 1
            await asyncio.sleep(max(0.0, began + i * period - loop.time()))
            await move(self.ctl, self.nodes, self.offsets[i % 2])
            self._switches += 1

    async def stop(self) -> None:
        if self._strobe is not None:
            self._strobe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._strobe
            self._strobe = None
            self.stop_evidence = {"switches": self._switches}
        if self._moved:
            # Not `clock`: the checkers merge the stop's evidence over the start's.
            back = await move(self.ctl, self.nodes, 0)
            self.stop_evidence = {**(self.stop_evidence or {}), "clock_healed": back}
            self._moved = False


def clock_skew(ctl: Controls, fault: ClockSkewFault, fault_id: str) -> ActiveFault:
    return ClockWindow(
        ctl, list(fault.targets), (fault.offset,), {"nodes": fault.targets, "offset": fault.offset}
    )


def clock_jump(ctl: Controls, fault: ClockJumpFault, fault_id: str) -> ActiveFault:
    return ClockWindow(
        ctl, list(fault.targets), (fault.offset,), {"nodes": fault.targets, "offset": fault.offset}
    )


def clock_strobe(ctl: Controls, fault: ClockStrobeFault, fault_id: str) -> ActiveFault:
    target = {"nodes": fault.targets, "offset": fault.offset, "other": fault.other, "period": fault.period}
    return ClockWindow(ctl, list(fault.targets), (fault.offset, fault.other), target, period=fault.period)


NEMESES: dict[str, Callable[[Controls, Any, str], ActiveFault]] = {
    "clock-skew": clock_skew,
    "clock-jump": clock_jump,
    "clock-strobe": clock_strobe,
}
