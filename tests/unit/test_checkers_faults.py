"""The effects check on hand-made run directories: a fault whose window shows none of its kind's signs
is `no-effect`, and each sign that makes a fault bite (../shared/RUN-FORMAT.md, docs/run-format.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.judging import assert_only, check, details
from tests.unit.rundirs import RunDir

# --- effects: no-effect, and each sign that makes a fault bite -----------------------------------


def _fault_run(kind: str = "partition", evidence: dict[str, Any] | None = None) -> RunDir:
    """100 fast healthy commits before and 5 after a fault 30..35 (grace 5: its window ends at 40),
    two fast commits inside it, and flat samples: nothing bites."""
    run = RunDir()
    for i in range(100):
        run.intent(f"before-{i}", 1.0 + i * 0.25)
    run.start("f1", 30.0, kind, evidence=evidence).stop("f1", 35.0, kind)
    run.intent("during-1", 31.0)
    run.intent("during-2", 32.0)
    for i in range(5):
        run.intent(f"after-{i}", 45.0 + i)
    for t in (29.0, 32.0, 37.0, 50.0):
        run.sample(t, "agent-1", buffer_depth=0, buffer_cap=256)
        run.sample(t, "jetstream", stream_msgs=30, consumer_num_pending=1, consumer_num_ack_pending=0)
    return run


def test_no_effect(tmp_path: Path) -> None:
    v = check(_fault_run(), tmp_path)
    assert_only(v, ("no-effect", None))
    assert details(v, "no-effect") == [
        "f1 (partition, t=30 to 35, +5s grace): "
        "none of the signs of its kind: answers, latency, buffer, backlog, cluster"
    ]
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {}


def _cluster_samples(run: RunDir, leader_during: str, lagging: list[str]) -> RunDir:
    run.sample(29.0, "nats-1", stream_leader="nats-2")
    run.sample(29.0, "nats-2", stream_leader="nats-2", replicas_lagging=[])
    run.sample(32.0, "nats-1", stream_leader=leader_during)
    run.sample(32.0, "nats-2", stream_leader="nats-2", replicas_lagging=lagging)
    return run


def test_a_steady_cluster_is_no_sign(tmp_path: Path) -> None:
    assert_only(check(_cluster_samples(_fault_run(), "nats-2", []), tmp_path), ("no-effect", None))


def test_the_stream_leader_moving_makes_a_cluster_fault_bite(tmp_path: Path) -> None:
    v = check(_cluster_samples(_fault_run(), "nats-1", []), tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "cluster": "nats-1 took the stream's lead from nats-2"
    }


def test_a_follower_naming_a_stale_leader_is_no_move(tmp_path: Path) -> None:
    run = _fault_run()
    run.sample(29.0, "nats-2", stream_leader="nats-2", replicas_lagging=[])
    run.sample(29.0, "nats-3", stream_leader="nats-1")  # it has not yet heard nats-1 is gone
    run.sample(32.0, "nats-2", stream_leader="nats-2", replicas_lagging=[])
    run.sample(32.0, "nats-3", stream_leader="nats-2")
    assert_only(check(run, tmp_path), ("no-effect", None))


def test_a_replica_lagging_behind_the_leader_makes_a_cluster_fault_bite(tmp_path: Path) -> None:
    v = check(_cluster_samples(_fault_run(), "nats-2", ["nats-3"]), tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "cluster": "nats-2 saw replicas nats-3 lagging"
    }


def _answer(run: RunDir, how: str) -> None:
    if how == "pending-commit":
        run.intent("odd", 33.0, outcome="pending-commit")
    elif how == "fail":
        run.invoke("odd", 33.0).fail("odd", 33.1)
    elif how == "info":
        run.invoke("odd", 33.0).info("odd", 35.0)
    else:  # an invoke never completed
        run.invoke("odd", 33.0)


@pytest.mark.parametrize("how", ["pending-commit", "fail", "info", "never-completed"])
def test_answers_other_than_committed_make_a_fault_bite(tmp_path: Path, how: str) -> None:
    run = _fault_run()
    _answer(run, how)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {"answers": "1 answers other than committed"}


def test_an_answer_inside_the_grace_period_counts(tmp_path: Path) -> None:
    run = _fault_run()
    run.invoke("odd", 38.0).fail("odd", 38.1)
    assert_only(check(run, tmp_path))


def test_an_answer_after_the_grace_period_does_not(tmp_path: Path) -> None:
    run = _fault_run()
    run.invoke("odd", 41.0).fail("odd", 41.1)
    assert_only(check(run, tmp_path), ("no-effect", None))


def test_latency_above_the_healthy_p99_makes_a_fault_bite(tmp_path: Path) -> None:
    run = _fault_run()
    run.intent("slow-1", 33.0, latency_ms=100.0)
    run.intent("slow-2", 34.0, latency_ms=100.0)
    v = check(run, tmp_path)
    assert_only(v)
    effects = v["checks"]["effects"]["faults"]["f1"]["effects"]
    assert list(effects) == ["latency"]
    assert "2 of 4 answers slower than 10.0 ms" in effects["latency"]


def _few_healthy(slow_ms: float) -> RunDir:
    """Three healthy answers (10 ms), a fault whose four answers took slow_ms, nothing else biting."""
    run = RunDir(budgets={"commit_ms": 500})
    for i in range(3):
        run.intent(f"before-{i}", 1.0 + i)
    run.start("f1", 10.0).stop("f1", 15.0)
    for i in range(4):
        run.intent(f"during-{i}", 11.0 + i, latency_ms=slow_ms)
    run.sample(9.0, "agent-1", buffer_depth=0, buffer_cap=256)
    run.sample(30.0, "agent-1", buffer_depth=0, buffer_cap=256)
    return run


def test_few_healthy_answers_make_the_budget_the_latency_reference(tmp_path: Path) -> None:
    """The p99 of three values is their maximum, which a healthy answer exceeds a quarter of the time:
    slower than that is no sign. Slower than the commit budget is, and the detail says which it was."""
    assert_only(check(_few_healthy(40.0), tmp_path / "a"), ("no-effect", None))
    v = check(_few_healthy(600.0), tmp_path / "b")
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "latency": "4 of 4 answers slower than 500.0 ms (commit budget: 3 healthy answers, fewer than 100)"
    }


def test_the_latency_reference_says_it_is_the_healthy_p99(tmp_path: Path) -> None:
    run = _fault_run()
    run.intent("slow-1", 33.0, latency_ms=100.0)
    run.intent("slow-2", 34.0, latency_ms=100.0)
    v = check(run, tmp_path)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"]["latency"].endswith(
        "(healthy p99 of 105 answers)"
    )


def test_one_slow_answer_is_not_enough(tmp_path: Path) -> None:
    run = _fault_run()
    run.intent("slow-1", 33.0, latency_ms=100.0)
    assert_only(check(run, tmp_path), ("no-effect", None))


def test_a_rising_buffer_makes_a_fault_bite(tmp_path: Path) -> None:
    run = _fault_run()
    run.sample(33.0, "agent-1", buffer_depth=4, buffer_cap=256)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {"buffer": "agent-1 buffer rose from 0 to 4"}


def test_a_rising_backlog_makes_a_fault_bite(tmp_path: Path) -> None:
    run = _fault_run()
    run.sample(33.0, "jetstream", stream_msgs=30, consumer_num_pending=10, consumer_num_ack_pending=2)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "backlog": "jetstream consumer backlog rose from 1 to 12"
    }


def test_a_small_backlog_rise_is_not_enough(tmp_path: Path) -> None:
    run = _fault_run()
    run.sample(33.0, "jetstream", stream_msgs=30, consumer_num_pending=5)
    assert_only(check(run, tmp_path), ("no-effect", None))


@pytest.mark.parametrize("kind", ["crash", "pause", "outage"])
def test_container_evidence_makes_a_crash_pause_or_outage_bite(tmp_path: Path, kind: str) -> None:
    run = _fault_run(kind, evidence={"container": "solar-agent-1", "state": "exited"})
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "container": "the nemesis saw solar-agent-1 exited"
    }


@pytest.mark.parametrize("kind", ["partition", "latency", "clock-skew"])
def test_container_evidence_does_not_count_for_other_kinds(tmp_path: Path, kind: str) -> None:
    run = _fault_run(kind, evidence={"container": "solar-agent-1", "state": "exited"})
    assert_only(check(run, tmp_path), ("no-effect", None))


def test_a_power_loss_that_dropped_nothing_bites_by_its_halted_nodes(tmp_path: Path) -> None:
    """A power loss's nodes are halted (frozen with SIGKILL pending) when its line is written; with no
    unsynced byte to drop, that is its sign."""
    node = {"state": "halted", "seen": "cgroup freezer", "lost_bytes": 0, "lost_files": 0}
    run = _fault_run("power-loss", evidence={"nodes": {"agent-2": node}, "lost_bytes": 0, "lost_files": 0})
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "container": "the nemesis saw agent-2 halted"
    }


def test_a_running_container_is_no_evidence(tmp_path: Path) -> None:
    run = _fault_run("crash", evidence={"container": "solar-agent-1", "state": "running"})
    assert_only(check(run, tmp_path), ("no-effect", None))


def test_a_repeat_bites_when_it_posted_something_and_only_then(tmp_path: Path) -> None:
    evidence = {"reposted": 12, "same_answer": 12, "no_answer": 0, "changed_answer": 0, "changed": []}
    v = check(_fault_run("repeat", evidence=evidence), tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "repeats": "the nemesis posted 12 answered intents again"
    }
    nothing = _fault_run("repeat", evidence={**evidence, "reposted": 0, "same_answer": 0})
    nothing.sample(33.0, "agent-1", buffer_depth=4, buffer_cap=256)  # traffic signs do not count
    assert_only(check(nothing, tmp_path), ("no-effect", None))


@pytest.mark.parametrize("kind", ["clock-skew", "clock-jump", "clock-strobe"])
def test_a_clock_fault_bites_when_the_agent_clock_read_off_the_host_and_only_then(
    tmp_path: Path, kind: str
) -> None:
    v = check(_fault_run(kind, evidence={"clock": {"agent-1": 30.001}}), tmp_path)
    assert_only(v)
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {
        "clock": "agent-1's clock read +30.0 s off the host's"
    }
    assert_only(check(_fault_run(kind, evidence={"clock": {"agent-1": 0.2}}), tmp_path), ("no-effect", None))


def test_each_fault_is_judged_alone(tmp_path: Path) -> None:
    run = _fault_run()
    run.invoke("odd", 33.0).info("odd", 34.0)
    run.start("f2", 60.0).stop("f2", 62.0)
    for i in range(3):
        run.intent(f"late-{i}", 70.0 + i)
    run.agents_drained(75.0)
    v = check(run, tmp_path)
    assert_only(v, ("no-effect", None))
    assert details(v, "no-effect")[0].startswith("f2 (partition, t=60 to 62")


def test_a_fault_is_unhealthy_from_when_it_was_scheduled_when_it_took_effect_later(tmp_path: Path) -> None:
    """Ops invoked while the nemesis was still applying a fault of several parts are not healthy."""
    run = RunDir()
    for i in range(100):
        run.intent(f"a{i}", 1.0 + i * 0.05)
    for i in range(8):  # a commit-latency anomaly, were they judged
        run.intent(f"while-applying-{i}", 9.55 + i * 0.05, latency_ms=900.0)
    run.start("f1", 10.0, "latency", scheduled=9.5).stop("f1", 12.0, "latency")
    run.agents_drained(13.0)
    v = check(run, tmp_path)
    assert_only(v)  # the slow commits bit for the fault, and count for no budget
    assert v["checks"]["latency"]["commit_values"] == 100
    assert "latency" in v["checks"]["effects"]["faults"]["f1"]["effects"]
