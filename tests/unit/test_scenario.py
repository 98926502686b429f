"""Scenario files: what loads, what each mistake reports (file, line, path, what is allowed), the matrix,
and the resolved form written as scenario.json."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.scenario import (
    FAULTS,
    CrashFault,
    OutageFault,
    PartitionFault,
    ScenarioError,
    json_schema,
    load_scenario,
    load_scenarios,
    parse_duration,
    select_links,
    validate_files,
)

NATS_DOWN = """\
name: nats-down
description: libp2p up, NATS down for 20 s under load; buffered intents replay
seed: 42
markers: [soak]
topology: {agents: 3, quorum: 2, buffer_cap: 256}
load: {rate: 50, duration: 60s}
faults:
  - at: 10s
    for: 20s
    fault: outage
    target: nats
    mode: blackhole          # refuse | blackhole | kill | pause
  - {at: 35s, for: 5s, fault: partition, groups: [[agent-1], [agent-2, agent-3]], mode: blackhole}
  - {at: 42s, fault: latency, links: agents>orchestrator, latency: 50ms, jitter: 10ms}
  - {at: 50s, fault: crash, target: projector, restart_after: 2s}
stream: {duplicate_window: 30s, max_msgs: 100000}
expect:
  reconciliation: exact      # every accepted intent once in JetStream, once in SurrealDB
  buffers: within-cap
  latency: {intent_ms: 120}
  recovery: {drained_within: 15s}
"""

MINIMAL_LOAD = "load: {rate: 5, duration: 60s}\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path, **overrides: object) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path, overrides or None)
    return caught.value.problems


def only_problem(path: Path) -> str:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_full_scenario_loads_with_its_values_and_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "nats-down", NATS_DOWN))

    assert scenario.name == "nats-down"
    assert scenario.seed == 42 and scenario.markers == ["soak"]
    assert (scenario.topology.agents, scenario.topology.quorum, scenario.topology.buffer_cap) == (3, 2, 256)
    assert scenario.topology.intent_timeout == pytest.approx(0.08)
    assert scenario.load.rate == 50 and scenario.load.duration == 60
    assert scenario.load.keys == 16 and scenario.load.engine == "asyncio"

    outage, partition, latency, crash = scenario.faults
    assert isinstance(outage, OutageFault)
    assert (outage.at, outage.for_, outage.target, outage.mode) == (10, 20, "nats", "blackhole")
    assert outage.stop_at == 30
    assert isinstance(partition, PartitionFault)
    assert partition.groups == [["agent-1"], ["agent-2", "agent-3"]] and partition.links is None
    assert latency.links == ["agents>orchestrator"]  # a single selector becomes a list
    assert latency.latency == pytest.approx(0.05) and latency.jitter == pytest.approx(0.01)
    assert latency.stop_at is None  # until the end of the load
    assert isinstance(crash, CrashFault) and crash.stop_at == 52

    assert scenario.stream.duplicate_window == 30 and scenario.stream.max_msgs == 100000
    assert scenario.expect.reconciliation == "exact" and scenario.expect.buffers == "within-cap"
    assert scenario.expect.latency.intent_ms == 120 and scenario.expect.latency.commit_ms == 500
    assert scenario.expect.recovery.drained_within == 15
    assert scenario.expect.recovery_grace == 5 and scenario.expect.stream_exactly_once is True


def test_every_fault_kind_has_a_model() -> None:
    assert set(FAULTS) == {
        "partition",
        "isolate",
        "outage",
        "latency",
        "bandwidth",
        "slow_close",
        "reset_peer",
        "slicer",
        "limit_data",
        "crash",
        "pause",
        "repeat",
        "power-loss",
        "disk-error",
        "disk-full",
        "disk-slow",
        "clock-skew",
        "clock-jump",
        "clock-strobe",
    }


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("500ms", 0.5), ("20s", 20.0), ("2m", 120.0), ("1h", 3600.0), ("1m30s", 90.0), ("1.5", 1.5), ("3", 3.0)],
)
def test_durations_parse_to_seconds(tmp_path: Path, written: str, seconds: float) -> None:
    path = write(tmp_path, "d", f"name: d\nload: {{rate: 5, duration: {written}}}\n")

    assert load_scenario(path).load.duration == pytest.approx(seconds)
    assert parse_duration(written) == pytest.approx(seconds)


def test_a_bad_duration_names_its_path_and_the_allowed_forms(tmp_path: Path) -> None:
    path = write(tmp_path, "d", "name: d\nload:\n  rate: 5\n  duration: 5 parsecs\n")

    problem = only_problem(path)

    assert problem.startswith(f"{path}:4: load.duration: not a duration: '5 parsecs'; allowed: ")
    assert "500ms" in problem and "20s" in problem and "2m" in problem and "number of seconds" in problem


def test_an_unknown_field_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo",
        """\
        name: typo
        load: {rate: 5, duration: 60s}
        faults:
          - at: 10s
            fro: 20s
            fault: outage
            target: nats
        """,
    )

    problem = only_problem(path)

    assert problem.startswith(f"{path}:5: faults.0.fro: unknown field 'fro' (did you mean 'for'?); allowed: ")
    assert "at, for, target, mode" in problem


def test_a_wrong_outage_mode_lists_the_allowed_modes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mode",
        """\
        name: mode
        load: {rate: 5, duration: 60s}
        faults:
          - {at: 10s, fault: outage, target: nats, mode: explode}
        """,
    )

    assert only_problem(path) == (
        f"{path}:4: faults.0.mode: got 'explode'; allowed: refuse, blackhole, kill, pause"
    )


def test_an_unknown_fault_kind_lists_the_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, "kind", "name: kind\n" + MINIMAL_LOAD + "faults: [{at: 1s, fault: meteor}]\n")

    problem = only_problem(path)

    assert problem.startswith(
        f"{path}:3: faults.0.fault: unknown fault 'meteor'; allowed: partition, isolate"
    )


def test_an_agent_beyond_the_topology_is_an_error_naming_the_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "five",
        """\
        name: five
        topology: {agents: 3}
        load: {rate: 5, duration: 60s}
        faults:
          - {at: 1s, fault: isolate, target: agent-1}
          - {at: 2s, fault: isolate, target: agent-5}
        """,
    )

    problem = only_problem(path)

    assert problem.startswith(f"{path}:6: faults.1.target: 'agent-5' is not in the topology (agents: 3)")
    assert problem.endswith("allowed: agent-1..agent-3, orchestrator, projector, nats, surrealdb")


def test_link_selectors_are_checked_against_the_topology(tmp_path: Path) -> None:
    header = "name: links\ntopology: {agents: 3}\n" + MINIMAL_LOAD + "faults:\n"
    beyond = write(
        tmp_path, "links", header + "  - {at: 1s, fault: slow_close, links: [agent-5>agent-1], delay: 1s}\n"
    )
    assert only_problem(beyond).startswith(f"{beyond}:5: faults.0.links.0: 'agent-5' is not in the topology")

    nowhere = write(
        tmp_path, "links", header + "  - {at: 1s, fault: bandwidth, links: agent-1>nats, rate_kbps: 8}\n"
    )
    assert only_problem(nowhere).startswith(f"{nowhere}:5: faults.0.links.0: agent-1>nats matches no link")

    malformed = write(tmp_path, "links", header + "  - {at: 1s, fault: reset_peer, links: agent-1/agent-2}\n")
    assert "faults.0.links.0: not a link selector: 'agent-1/agent-2'" in only_problem(malformed)

    assert select_links("*>nats", 3) == [("orchestrator", "nats"), ("projector", "nats")]
    assert select_links("agents>agent-2", 3) == [("agent-1", "agent-2"), ("agent-3", "agent-2")]


def test_a_partition_takes_groups_or_links(tmp_path: Path) -> None:
    header = "name: part\n" + MINIMAL_LOAD + "faults:\n"
    neither = write(tmp_path, "part", header + "  - {at: 1s, fault: partition}\n")
    assert only_problem(neither).startswith(f"{neither}:4: faults.0: a partition needs groups or links")

    twice = write(
        tmp_path, "part", header + "  - {at: 1s, fault: partition, groups: [[agent-1], [agent-1]]}\n"
    )
    assert "faults.0.groups.1.0: agent-1 is in two groups" in only_problem(twice)


def test_quorum_above_the_agents_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "q", "name: q\ntopology:\n  agents: 3\n  quorum: 4\n" + MINIMAL_LOAD)

    assert (
        only_problem(path) == f"{path}:4: topology.quorum: quorum 4 is more than the 3 agents; allowed: 1..3"
    )


def test_the_name_must_be_the_files_name(tmp_path: Path) -> None:
    path = write(tmp_path, "nats-down", "name: nats-dwn\n" + MINIMAL_LOAD)

    problem = only_problem(path)

    assert problem.startswith(f"{path}:1: name: ")
    assert "'nats-dwn'" in problem and "'nats-down'" in problem


def test_a_yaml_syntax_error_gives_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken", "name: broken\nload: {rate: 5, duration: 60s\nfaults: []\n")

    problem = only_problem(path)

    assert problem.startswith(f"{path}:3: not valid YAML: ")
    assert "line 2" in problem  # where the unclosed mapping started


def test_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dup",
        """\
        name: dup
        load: {rate: 5, duration: 60s}
        faults:
          - at: 1s
            fault: pause
            target: nats
            at: 2s
        """,
    )

    assert (
        only_problem(path)
        == f"{path}:7: faults.0.at: duplicate key (first at line 4); allowed: each key once"
    )


def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "list", "- a\n- b\n")

    assert only_problem(path).startswith(f"{path}:1: got a list, not a mapping; allowed: name, description")


def test_all_problems_of_a_file_are_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "many",
        """\
        name: many
        load:
          rate: 0
          duration: forever
        expect: {buffers: sometimes}
        """,
    )

    lines = [problem.split(":")[1] for problem in problems_of(path)]

    assert lines == ["3", "4", "5"]


def test_a_fault_after_the_load_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "late", "name: late\n" + MINIMAL_LOAD + "faults: [{at: 70s, fault: pause, target: nats}]\n"
    )

    assert only_problem(path).startswith(f"{path}:3: faults.0.at: 70s is not before the load ends")


MATRIX = """\
name: flaps
topology: {agents: 3}
load: {rate: 5, duration: 60s}
faults:
  - {at: 10s, for: 20s, fault: outage, target: nats, mode: refuse}
matrix:
  faults.0.mode: [refuse, blackhole]
  topology.agents: [3, 5]
"""


def test_a_matrix_expands_into_parameter_sets(tmp_path: Path) -> None:
    path = write(tmp_path, "flaps", MATRIX)

    sets = load_scenarios(path)

    assert [ident for ident, _ in sets] == [
        "mode=refuse,agents=3",
        "mode=refuse,agents=5",
        "mode=blackhole,agents=3",
        "mode=blackhole,agents=5",
    ]
    assert [(s.faults[0].mode, s.topology.agents) for _, s in sets] == [
        ("refuse", 3),
        ("refuse", 5),
        ("blackhole", 3),
        ("blackhole", 5),
    ]
    assert all(s.matrix is None for _, s in sets)
    assert sets[3][1].parameters == {"faults.0.mode": "blackhole", "topology.agents": 5}
    assert load_scenario(path).matrix == {"faults.0.mode": ["refuse", "blackhole"], "topology.agents": [3, 5]}


def test_a_file_without_a_matrix_is_one_parameter_set(tmp_path: Path) -> None:
    path = write(tmp_path, "nats-down", NATS_DOWN)

    [(ident, scenario)] = load_scenarios(path)

    assert ident == "" and scenario.name == "nats-down"


def test_a_bad_matrix_value_points_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "flaps", MATRIX.replace("[refuse, blackhole]", "\n    - refuse\n    - explode"))

    problems = problems_of(path)

    assert problems == [
        f"{path}:9: faults.0.mode: got 'explode' (in parameter set mode=explode,agents=3); "
        "allowed: refuse, blackhole, kill, pause",
        f"{path}:9: faults.0.mode: got 'explode' (in parameter set mode=explode,agents=5); "
        "allowed: refuse, blackhole, kill, pause",
    ]


def test_a_matrix_key_must_lead_somewhere(tmp_path: Path) -> None:
    path = write(tmp_path, "flaps", MATRIX.replace("faults.0.mode:", "faults.0.mood:"))

    assert only_problem(path).startswith(f"{path}:7: matrix.faults.0.mood: faults.0 has no 'mood'; allowed: ")


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "nats-down", NATS_DOWN)

    assert load_scenario(path, {"topology.agents": 5, "topology.quorum": 3}).topology.agents == 5
    [problem] = problems_of(path, **{"topology.agents": 9})
    assert problem.startswith(f"{path} (overridden): topology.agents: got 9: ")


def test_resolved_is_scenario_json_with_budgets_invariants_and_the_seed(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "nats-down", NATS_DOWN))

    resolved = scenario.resolved()

    assert json.loads(json.dumps(resolved)) == resolved
    assert resolved["name"] == "nats-down" and resolved["seed"] == 42
    # The run format's names and units (docs/run-format.md), not the file's.
    assert resolved["budgets"] == {"intent_ms": 120, "commit_ms": 500, "recovery_grace_s": 5}
    assert resolved["invariants"] == {"stream_exactly_once": True}
    assert (resolved["topology"]["agents"], resolved["topology"]["buffer_cap"]) == (3, 256)
    assert resolved["stream"] == {
        "max_msgs": 100000,
        "max_bytes": None,
        "max_age_s": None,
        "duplicate_window_s": 30,
    }
    assert resolved["expect"] == {
        "min_committed": 0,
        "aborts": "allowed",
        "rejections": "allowed",
        "drained_within_s": 15,
        "reconciliation": "exact",
        "buffers": "within-cap",
        "unplanned_exits": "forbidden",
        "cdc_gaps": "lost",
    }
    assert resolved["faults"][0] == {
        "fault": "outage",
        "at": 10.0,
        "for": 20.0,
        "target": "nats",
        "mode": "blackhole",
    }
    assert resolved["load"]["keys"] == 16 and resolved["topology"]["replay_interval"] == pytest.approx(0.2)
    assert "matrix" not in resolved
    assert scenario.resolved(seed=7)["seed"] == 7


def test_resolved_seed_defaults_to_zero_and_quorum_to_a_majority(tmp_path: Path) -> None:
    path = write(tmp_path, "plain", "name: plain\ntopology: {agents: 5}\n" + MINIMAL_LOAD)

    resolved = load_scenario(path).resolved()

    assert resolved["seed"] == 0
    assert resolved["topology"]["quorum"] == 3


def test_json_schema_describes_the_file() -> None:
    schema = json_schema()

    json.dumps(schema)
    assert "faults" in schema["properties"] and "load" in schema["required"]
    assert schema["additionalProperties"] is False
    fault_kinds = schema["properties"]["faults"]["items"]["discriminator"]["mapping"]
    assert set(fault_kinds) == set(FAULTS)


def test_validate_files_reports_every_bad_file_and_nothing_for_good_ones(tmp_path: Path) -> None:
    good = write(tmp_path, "nats-down", NATS_DOWN)
    bad = write(tmp_path, "q", "name: q\ntopology: {agents: 3, quorum: 4}\n" + MINIMAL_LOAD)

    assert validate_files([good]) == []
    problems = validate_files([tmp_path, tmp_path / "missing.yaml"])
    assert [p.split(":")[0] for p in problems] == [str(bad), str(tmp_path / "missing.yaml")]
    assert "cannot read" in problems[1]


def test_scenario_error_is_a_harness_error() -> None:
    assert issubclass(ScenarioError, HarnessError)


def test_a_repeat_targets_an_agent_and_lasts_a_second_unless_told(tmp_path: Path) -> None:
    ok = write(
        tmp_path, "r", "name: r\n" + MINIMAL_LOAD + "faults: [{at: 5s, fault: repeat, target: agent-2}]\n"
    )
    assert load_scenario(ok).faults[0].stop_at == 6.0
    bad = write(
        tmp_path, "r", "name: r\n" + MINIMAL_LOAD + "faults: [{at: 5s, fault: repeat, target: nats}]\n"
    )
    problem = only_problem(bad)
    assert "r.yaml:3" in problem and "nats takes no intents" in problem and "an agent" in problem, problem


def test_the_load_engine_is_asyncio_unless_told_and_nothing_else(tmp_path: Path) -> None:
    assert load_scenario(write(tmp_path, "e", "name: e\n" + MINIMAL_LOAD)).load.engine == "asyncio"
    locust = write(tmp_path, "e", "name: e\nload: {rate: 5, duration: 60s, engine: locust}\n")
    assert load_scenario(locust).resolved()["load"]["engine"] == "locust"
    problem = only_problem(write(tmp_path, "e", "name: e\nload: {rate: 5, duration: 60s, engine: gevent}\n"))
    assert "e.yaml:2: load.engine: got 'gevent'" in problem and "asyncio, locust" in problem, problem


def test_load_mix_is_gone_with_an_error_that_says_so(tmp_path: Path) -> None:
    old = write(tmp_path, "m", "name: m\nload:\n  rate: 5\n  duration: 60s\n  mix: {intent: 1}\n")
    problem = only_problem(old)
    assert "m.yaml:5: load.mix:" in problem, problem
    assert "was removed" in problem and "only intents" in problem and "delete `mix`" in problem, problem
    assert "mix" not in json_schema()["$defs"]["Load"]["properties"]
    assert json_schema()["$defs"]["Load"]["properties"]["engine"]["enum"] == ["asyncio", "locust"]


def test_repeat_works_with_either_engine(tmp_path: Path) -> None:
    load = "load: {rate: 5, duration: 60s, engine: locust}\n"
    path = write(tmp_path, "r", "name: r\n" + load + "faults: [{at: 5s, fault: repeat, target: agent-2}]\n")
    assert load_scenario(path).faults[0].fault == "repeat"
