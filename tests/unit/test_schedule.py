"""The schedule: a scenario's faults and its seeded random block as time-ordered start/stop steps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.scenario import (
    DISK_FAULTS,
    FAULTS,
    CrashFault,
    LatencyFault,
    OutageFault,
    PartitionFault,
    Scenario,
    ScenarioError,
    data_plane_links,
    node_names,
)
from harness.schedule import Step, drive, plan


def scenario(**fields: Any) -> Scenario:
    data: dict[str, Any] = {"name": "s", "load": {"rate": 5, "duration": "60s"}, **fields}
    return Scenario.model_validate(data)


EXPLICIT = scenario(
    faults=[
        {"at": "10s", "for": "20s", "fault": "outage", "target": "nats", "mode": "blackhole"},
        {"at": "35s", "for": "5s", "fault": "partition", "groups": [["agent-1"], ["agent-2", "agent-3"]]},
        {"at": "42s", "fault": "latency", "links": "agents>orchestrator", "latency": "50ms"},
        {"at": "5s", "fault": "crash", "target": "projector", "restart_after": "5s"},
    ]
)

# Disk faults need targets on faultfs; a clock jump has no window.
ALL_KINDS = [kind for kind in FAULTS if kind not in DISK_FAULTS and kind != "clock-jump"]


def random_scenario(**block: Any) -> Scenario:
    return scenario(random={"interval": "6s", "duration": "3s", "faults": ALL_KINDS, **block})


def windows(steps: list[Step]) -> dict[str, tuple[float, float]]:
    starts = {s.fault_id: s.at for s in steps if s.action == "start"}
    stops = {s.fault_id: s.at for s in steps if s.action == "stop"}
    assert starts.keys() == stops.keys(), "every start has its stop"
    return {fid: (starts[fid], stops[fid]) for fid in starts}


def test_explicit_faults_get_ids_in_file_order_and_steps_in_time_order() -> None:
    steps = plan(EXPLICIT, seed=0)

    assert [(s.at, s.action, s.fault_id) for s in steps] == [
        (5.0, "start", "f4"),
        (10.0, "stop", "f4"),  # restart_after ends a crash
        (10.0, "start", "f1"),
        (30.0, "stop", "f1"),
        (35.0, "start", "f2"),
        (40.0, "stop", "f2"),
        (42.0, "start", "f3"),
        (60.0, "stop", "f3"),  # no `for`: healed when the load ends
    ]
    by_id = {s.fault_id: s.fault for s in steps}
    assert isinstance(by_id["f1"], OutageFault) and isinstance(by_id["f2"], PartitionFault)
    assert isinstance(by_id["f3"], LatencyFault) and isinstance(by_id["f4"], CrashFault)


def test_at_one_instant_stops_come_before_starts() -> None:
    steps = plan(EXPLICIT, seed=0)
    for earlier, later in zip(steps, steps[1:], strict=False):
        assert (earlier.at, earlier.action == "start") <= (later.at, later.action == "start")


def test_a_fault_lasting_past_the_load_is_stopped_when_the_load_ends() -> None:
    s = scenario(faults=[{"at": "50s", "for": "30s", "fault": "pause", "target": "agent-2"}])
    assert windows(plan(s, seed=0)) == {"f1": (50.0, 60.0)}


def test_no_faults_no_steps() -> None:
    assert plan(scenario(), seed=3) == []


def test_the_same_seed_gives_the_same_plan() -> None:
    s = random_scenario()
    first, second = plan(s, seed=7), plan(s, seed=7)
    assert first == second
    assert [s.fault.model_dump() for s in first] == [s.fault.model_dump() for s in second]


def test_different_seeds_give_different_plans() -> None:
    s = random_scenario()
    plans = {repr([(st.at, st.action, st.fault.model_dump()) for st in plan(s, seed)]) for seed in range(5)}
    assert len(plans) == 5


def test_the_block_seed_wins_over_the_scenario_seed() -> None:
    s = random_scenario(seed=11)
    assert plan(s, seed=1) == plan(s, seed=2)


def test_random_faults_are_numbered_and_do_not_overlap() -> None:
    steps = plan(random_scenario(), seed=5)
    spans = windows(steps)

    assert list(spans) == [f"r{i}" for i in range(1, len(spans) + 1)]
    assert len(spans) == 10  # every 6 s over 60 s
    ordered = sorted(spans.values())
    for (_, stop), (next_start, _) in zip(ordered, ordered[1:], strict=False):
        assert next_start >= stop
    assert all(stop - start == pytest.approx(3.0) for start, stop in ordered)


def test_a_fault_longer_than_the_interval_delays_the_next() -> None:
    spans = windows(plan(random_scenario(interval="2s", duration="5s"), seed=0))
    ordered = sorted(spans.values())
    assert [start for start, _ in ordered[:3]] == [0.0, 5.0, 10.0]
    assert all(b_start >= a_stop for (_, a_stop), (b_start, _) in zip(ordered, ordered[1:], strict=False))


@pytest.mark.parametrize("seed", range(20))
def test_random_faults_stay_in_their_window_with_allowed_kinds_and_targets(seed: int) -> None:
    targets = ["agent-1", "agent-2", "agent-3", "nats"]
    kinds = ["partition", "outage", "latency", "crash", "pause", "isolate", "slicer"]
    s = scenario(
        topology={"agents": 4},
        random={
            "at": "7s",
            "for": "40s",
            "interval": "5s",
            "duration": "4s",
            "faults": kinds,
            "targets": targets,
        },
    )
    steps = plan(s, seed)
    assert steps, "a 40 s window with a 5 s interval holds faults"
    for start, stop in windows(steps).values():
        assert 7.0 <= start < stop <= 47.0
    for step in steps:
        fault = step.fault
        assert fault.fault in kinds
        if hasattr(fault, "target"):
            assert fault.target in targets
        if isinstance(fault, PartitionFault):
            assert fault.groups is not None and len(fault.groups) == 2
            grouped = [n for g in fault.groups for n in g]
            assert set(grouped) <= set(targets) and len(grouped) == len(set(grouped))
            assert len(fault.groups[0]) < len(fault.groups[1])  # a minority and a majority
        if getattr(fault, "links", None):
            # every link touches one allowed target, and exists in the topology
            touched = set.intersection(*({a, b} for a, b in (ln.split(">") for ln in fault.links)))
            assert touched & set(targets)
            assert {tuple(ln.split(">")) for ln in fault.links} <= set(data_plane_links(4))


def test_random_faults_end_with_the_load_when_their_block_does_not() -> None:
    s = scenario(
        load={"rate": 5, "duration": "20s"},
        random={"at": "2s", "interval": "7s", "duration": "5s", "faults": ["pause"]},
    )
    spans = windows(plan(s, seed=0))
    assert sorted(spans.values()) == [(2.0, 7.0), (9.0, 14.0), (16.0, 20.0)]  # the last one cut at the end


def test_without_targets_any_node_may_be_hit() -> None:
    seen = {
        step.fault.target
        for seed in range(10)
        for step in plan(random_scenario(faults=["crash"]), seed)
        if isinstance(step.fault, CrashFault)
    }
    assert seen <= set(node_names(3))
    assert len(seen) > 3


def test_a_random_block_whose_kinds_cannot_act_on_its_targets_is_refused() -> None:
    s = random_scenario(faults=["outage"], targets=["agent-1", "agent-2"])
    with pytest.raises(ScenarioError, match="nats or surrealdb"):
        plan(s, seed=0)


# drive: the plan run on a clock the test moves, against a nemesis whose steps the test holds open.


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep_until(self, at: float) -> None:
        if at > self.t:
            fut = asyncio.get_running_loop().create_future()
            self._sleepers.append((at, fut))
            await fut

    async def advance(self, to: float) -> None:
        self.t = to
        for at, fut in self._sleepers:
            if at <= to and not fut.done():
                fut.set_result(None)
        await settle()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


class SlowNemesis:
    """Records when each step began and ended on the clock; a step named in `held` waits for its release."""

    def __init__(self, clock: Clock, held: set[str] = frozenset(), fail: str = "") -> None:
        self.clock = clock
        self.log: list[tuple[str, float]] = []
        self.gates = {name: asyncio.Event() for name in held}
        self.fail = fail
        self.scheduled: dict[str, float | None] = {}

    async def _act(self, name: str) -> None:
        self.log.append((f"{name} begin", self.clock.now()))
        if name in self.gates:
            await self.gates[name].wait()
        if name == self.fail:
            raise RuntimeError(f"{name} failed")
        self.log.append((f"{name} end", self.clock.now()))

    async def start(self, fault: Any, fault_id: str, scheduled: float | None = None) -> None:
        self.scheduled[fault_id] = scheduled
        await self._act(f"start {fault_id}")

    async def stop(self, fault_id: str) -> None:
        await self._act(f"stop {fault_id}")

    async def release(self, name: str) -> None:
        self.gates[name].set()
        await settle()

    def began(self, name: str) -> float | None:
        return dict(self.log).get(f"{name} begin")


def steps_of(*faults: dict[str, Any]) -> list[Step]:
    return plan(scenario(load={"rate": 5, "duration": "20s"}, faults=list(faults)), seed=0)


CRASH_THEN_PARTITION = steps_of(
    {"at": "1s", "fault": "crash", "target": "agent-1", "restart_after": "1s"},
    {"at": "3s", "for": "2s", "fault": "partition", "groups": [["agent-1"], ["agent-2", "agent-3"]]},
)


async def test_a_plan_without_faults_is_driven_to_its_end() -> None:
    clock = Clock()
    await drive(plan(scenario(), seed=0), SlowNemesis(clock), clock.now, {}, clock.sleep_until)


async def test_a_slow_stop_delays_no_later_fault() -> None:
    clock = Clock()
    nemesis = SlowNemesis(clock, held={"stop f1"})  # a crash's stop waits until the node is ready
    active: dict[str, str] = {}
    task = asyncio.create_task(drive(CRASH_THEN_PARTITION, nemesis, clock.now, active, clock.sleep_until))
    for t in (1, 2, 3, 5):
        await clock.advance(t)
    assert nemesis.began("start f2") == 3 and nemesis.began("stop f2") == 5
    assert active == {"f1": "crash"}, "f1 is active until its stop has finished"
    await nemesis.release("stop f1")
    await task
    assert active == {}
    assert nemesis.scheduled == {"f1": 1.0, "f2": 3.0}


async def test_a_stop_waits_for_its_own_start() -> None:
    clock = Clock()
    nemesis = SlowNemesis(clock, held={"start f1"})
    task = asyncio.create_task(drive(CRASH_THEN_PARTITION, nemesis, clock.now, None, clock.sleep_until))
    await clock.advance(2.5)
    assert nemesis.began("stop f1") is None, "its start is still being applied"
    await nemesis.release("start f1")
    assert nemesis.log[-3:-1] == [("start f1 end", 2.5), ("stop f1 begin", 2.5)]
    await clock.advance(5)
    await task


async def test_at_one_instant_the_stops_finish_before_the_starts_begin() -> None:
    clock = Clock()
    steps = steps_of(
        {"at": "1s", "for": "2s", "fault": "crash", "target": "agent-1"},
        {"at": "3s", "for": "2s", "fault": "pause", "target": "agent-1"},
    )
    nemesis = SlowNemesis(clock, held={"stop f1"})
    task = asyncio.create_task(drive(steps, nemesis, clock.now, None, clock.sleep_until))
    await clock.advance(3)
    assert nemesis.began("stop f1") == 3 and nemesis.began("start f2") is None
    await clock.advance(3.4)
    await nemesis.release("stop f1")
    assert nemesis.log[-3:-1] == [("stop f1 end", 3.4), ("start f2 begin", 3.4)]
    await clock.advance(5)
    await task


async def test_cancelled_the_fault_being_applied_finishes_and_later_ones_never_start() -> None:
    clock = Clock()
    nemesis = SlowNemesis(clock, held={"start f2"})
    active: dict[str, str] = {}
    task = asyncio.create_task(drive(CRASH_THEN_PARTITION, nemesis, clock.now, active, clock.sleep_until))
    await clock.advance(3)
    task.cancel()  # the load ended with f2 half applied
    await settle()
    assert not task.done(), "the start being applied finishes before the driver returns"
    await nemesis.release("start f2")
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert active == {"f2": "partition"}, "left for heal_all"
    await clock.advance(10)
    assert nemesis.began("stop f2") is None


async def test_a_failed_step_is_raised_once_the_steps_being_applied_finished() -> None:
    clock = Clock()
    steps = steps_of(
        {"at": "1s", "for": "5s", "fault": "crash", "target": "agent-1"},
        {"at": "2s", "for": "5s", "fault": "pause", "target": "agent-2"},
        {"at": "9s", "for": "1s", "fault": "pause", "target": "agent-3"},
    )
    nemesis = SlowNemesis(clock, held={"start f1", "start f2"}, fail="start f2")
    task = asyncio.create_task(drive(steps, nemesis, clock.now, None, clock.sleep_until))
    await clock.advance(2)
    await nemesis.release("start f2")
    assert not task.done(), "f1 is still being applied"
    await nemesis.release("start f1")
    with pytest.raises(RuntimeError, match="start f2 failed"):
        await task
    await clock.advance(10)
    assert nemesis.began("start f3") is None


async def test_on_the_real_clock_steps_start_on_time() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    nemesis = SlowNemesis(Clock(), held={"stop f1"})
    nemesis.clock.now = lambda: loop.time() - t0  # type: ignore[method-assign]
    steps = [
        Step(0.01, "start", "f1", CrashFault(fault="crash", at=0, target="agent-1")),
        Step(0.02, "stop", "f1", CrashFault(fault="crash", at=0, target="agent-1")),
        Step(0.05, "start", "f2", CrashFault(fault="crash", at=0, target="agent-2")),
    ]
    task = asyncio.create_task(drive(steps, nemesis, nemesis.clock.now))
    await asyncio.sleep(0.1)
    assert (nemesis.began("start f2") or 0) >= 0.05, nemesis.log
    await nemesis.release("stop f1")
    await task
