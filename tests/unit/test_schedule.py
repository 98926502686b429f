"""The schedule: a scenario's faults and its seeded random block as time-ordered start/stop steps."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario import (
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
from harness.schedule import Step, plan


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

ALL_KINDS = list(FAULTS)


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
