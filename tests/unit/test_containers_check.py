"""The containers check: a death or pause the engine reported is planned when a fault of the history
acts on that container then; any other one is an `expectation` anomaly (`unplanned_exits`) that says
which container, when, how it died and whether it came back, unless the scenario allows them."""

from __future__ import annotations

from pathlib import Path

from harness.checkers import judge
from tests.unit.rundirs import RunDir


def _run(**scenario: object) -> RunDir:
    run = RunDir(**scenario)
    for i in range(5):
        run.intent(f"a{i}", 1.0 + i)
    run.agents_drained(14.0, ("agent-1", "agent-2"))
    run.agents_drained(20.5, ("agent-1", "agent-2"))
    return run


def _expectations(verdict: dict) -> list[str]:
    return [
        a["detail"]
        for a in verdict["anomalies"]
        if a["kind"] == "expectation" and a["detail"].startswith("unplanned_exits")
    ]


def test_an_unplanned_death_fails_the_run_and_says_what_happened(tmp_path: Path) -> None:
    run = _run()
    run.sample(12.5, "agent-2", container="die", exit_code=137, oom_killed=True)
    run.sample(20.25, "agent-2", container="start")
    v = judge(run.write(tmp_path))
    assert v["valid"] is False
    assert _expectations(v) == [
        "unplanned_exits: agent-2's container died at t=12.5 (exit code 137, OOM-killed) with no fault "
        "acting on it; back at t=20.25"
    ]
    check = v["checks"]["containers"]
    assert check["valid"] is False and check["deaths"] == 1 and check["planned"] == 0
    assert check["unplanned"] == [
        {
            "source": "agent-2",
            "t": 12.5,
            "event": "die",
            "exit_code": 137,
            "oom_killed": True,
            "back_at": 20.25,
        }
    ]


def test_a_death_inside_a_crash_of_that_container_is_planned(tmp_path: Path) -> None:
    run = _run()
    run.start("f1", 10.2, "crash", scheduled=10.0, target={"node": "agent-2"})
    run.sample(10.1, "agent-2", container="die", exit_code=137, oom_killed=False)
    run.sample(15.0, "agent-2", container="start")
    run.stop("f1", 15.3, "crash")
    v = judge(run.write(tmp_path))
    assert v["checks"]["containers"] == {
        "valid": True, "deaths": 1, "pauses": 0, "planned": 1, "unplanned": [],
    }  # fmt: skip
    assert not _expectations(v)


def test_a_crash_of_another_container_or_a_link_outage_plans_nothing(tmp_path: Path) -> None:
    run = _run()
    run.start("f1", 10.0, "crash", target={"node": "agent-1"})
    run.start("f2", 10.0, "outage", target={"node": "agent-2", "mode": "refuse"})
    run.sample(11.0, "agent-2", container="die", exit_code=1, oom_killed=False)
    run.stop("f1", 15.0, "crash")
    run.stop("f2", 15.0, "outage")
    v = judge(run.write(tmp_path))
    assert _expectations(v) == [
        "unplanned_exits: agent-2's container died at t=11 (exit code 1) with no fault acting on it; "
        "not back by the end"
    ]


def test_an_unplanned_pause_is_reported_and_a_pause_fault_plans_one(tmp_path: Path) -> None:
    run = _run()
    run.start("f1", 5.0, "pause", target={"node": "agent-1"})
    run.sample(5.0, "agent-1", container="pause")
    run.sample(9.0, "agent-1", container="unpause")
    run.stop("f1", 9.0, "pause")
    run.sample(30.0, "agent-2", container="pause")
    v = judge(run.write(tmp_path))
    assert _expectations(v) == [
        "unplanned_exits: agent-2's container was paused at t=30 with no fault acting on it; "
        "not back by the end"
    ]
    assert v["checks"]["containers"]["pauses"] == 2


def test_allowed_reports_without_failing(tmp_path: Path) -> None:
    run = _run()
    run.scenario.setdefault("expect", {})["unplanned_exits"] = "allowed"
    run.sample(12.0, "agent-2", container="die", exit_code=0, oom_killed=False)
    v = judge(run.write(tmp_path))
    assert v["valid"] is True
    assert v["checks"]["containers"]["unplanned"][0]["exit_code"] == 0


def test_event_lines_do_not_disturb_the_metric_checks(tmp_path: Path) -> None:
    """A container's last line being an event must not hide its last buffer sample (undrained)."""
    run = _run()
    run.sample(41.0, "agent-1", buffer_depth=3, buffer_cap=256)
    run.sample(42.0, "agent-1", container="die", exit_code=137, oom_killed=False)
    run.scenario.setdefault("expect", {})["unplanned_exits"] = "allowed"
    v = judge(run.write(tmp_path))
    assert [a["kind"] for a in v["anomalies"]] == ["undrained"]


def test_a_bad_rule_names_the_field_and_what_is_allowed(tmp_path: Path) -> None:
    run = _run()
    run.scenario.setdefault("expect", {})["unplanned_exits"] = "expected"
    v = judge(run.write(tmp_path))
    assert v["valid"] == "unknown"
    assert "expect.unplanned_exits: got 'expected'" in v["checks"]["containers"]["error"]
    assert "forbidden or allowed" in v["checks"]["containers"]["error"]
