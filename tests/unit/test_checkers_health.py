"""The checkers beyond reconciliation on hand-made run directories: buffers, latency with its healthy
windows and grace period, the scenario's expectations, leak and retention (../shared/RUN-FORMAT.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.judging import assert_only, check, details, healthy
from tests.unit.rundirs import RunDir

# --- buffers ------------------------------------------------------------------------------------


def test_undrained(tmp_path: Path) -> None:
    """Drained in time (no expectation broken), then refilled: the last sample shows it."""
    run = healthy()
    run.sample(8.0, "agent-2", buffer_depth=3, buffer_cap=256)
    v = check(run, tmp_path)
    assert_only(v, ("undrained", None))
    assert details(v, "undrained") == ["agent-2: last sample (t=8) shows buffer_depth 3"]


def test_the_configured_cap_beats_the_samples_larger_cap(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["topology"] = {"buffer_cap": 10}
    run.sample(2.0, "agent-1", buffer_depth=20, buffer_cap=256)
    run.sample(3.0, "agent-1", buffer_depth=10, buffer_cap=256)  # at the cap: not over it
    v = check(run, tmp_path)
    assert_only(v, ("buffer-overflow", None))
    assert "agent-1: buffer_depth 20 > configured cap 10 at t=2" in details(v, "buffer-overflow")[0]


def test_the_samples_cap_is_used_when_none_is_configured(tmp_path: Path) -> None:
    run = healthy()
    run.sample(2.0, "agent-1", buffer_depth=20, buffer_cap=16)
    run.sample(2.0, "agent-2", buffer_depth=20, buffer_cap=256)
    v = check(run, tmp_path)
    assert_only(v, ("buffer-overflow", None))
    assert "agent-1: buffer_depth 20 > reported cap 16" in details(v, "buffer-overflow")[0]


# --- latency, healthy windows, the grace period --------------------------------------------------


def test_intent_latency(tmp_path: Path) -> None:
    """Seven of a hundred over the budget: were only 1 % over it, a chance of 0.00006."""
    run = RunDir(budgets={"intent_ms": 50})
    for i in range(100):
        run.intent(f"i{i}", 1.0 + i * 0.1, quorum_ms=60.0 if i % 16 == 3 else 5.0)
    run.agents_drained(12.0)
    v = check(run, tmp_path)
    assert_only(v, ("intent-latency", None))
    latency = v["checks"]["latency"]
    assert (latency["intent_values"], latency["intent_over_budget"], latency["intent_p99_ms"]) == (
        100,
        7,
        60.0,
    )
    assert latency["intent_p_value"] < 0.001
    assert details(v, "intent-latency")[0].startswith(
        "7 of 100 healthy-window ops over the 50 ms budget of quorum_ms"
    )


def test_a_few_slow_values_of_a_hundred_are_chance_even_over_the_p99(tmp_path: Path) -> None:
    """Three of a hundred over the budget puts the nearest-rank p99 over it, yet were only 1 % over it,
    three or more would happen 8 % of the time: not beyond chance."""
    run = RunDir(budgets={"intent_ms": 50})
    for i in range(100):
        run.intent(f"i{i}", 1.0 + i * 0.1, quorum_ms=60.0 if i in (10, 40, 80) else 5.0)
    run.agents_drained(12.0)
    v = check(run, tmp_path)
    assert_only(v)
    latency = v["checks"]["latency"]
    assert latency["intent_p99_ms"] == 60.0 and latency["intent_over_budget"] == 3
    assert latency["intent_p_value"] == pytest.approx(0.0794, abs=1e-3)


def test_commit_latency(tmp_path: Path) -> None:
    run = healthy(n=100, every=0.1)
    for i in range(7):
        run.intent(f"slow-{i}", 2.55 + i * 0.1, latency_ms=600.0 + i)
    v = check(run, tmp_path)
    assert_only(v, ("commit-latency", None))
    assert v["checks"]["latency"]["commit_p99_ms"] == pytest.approx(605.0)  # the 106th of 107
    assert v["checks"]["latency"]["commit_over_budget"] == 7


def test_one_outlier_among_37_is_valid(tmp_path: Path) -> None:
    """Of 37 values the nearest-rank p99 is their maximum, the outlier; were 1 % over the budget, one
    or more of 37 would be over it 31 % of the time."""
    run = healthy(n=36, every=0.1)
    run.intent("slow", 2.55, latency_ms=5000.0)
    v = check(run, tmp_path)
    assert_only(v)
    latency = v["checks"]["latency"]
    assert (latency["commit_values"], latency["commit_over_budget"]) == (37, 1)
    assert latency["commit_p99_ms"] == pytest.approx(5000.0)
    assert latency["commit_p_value"] == pytest.approx(0.311, abs=1e-3)
    assert "commit_not_judged" not in latency


@pytest.mark.parametrize("n", [40, 50, 60])
def test_a_short_healthy_window_with_a_tenth_at_twice_the_budget_fails(tmp_path: Path, n: int) -> None:
    run = RunDir(budgets={"commit_ms": 100})
    for i in range(n):
        run.intent(f"c{i}", 1.0 + i * 0.1, latency_ms=200.0 if i % 10 == 5 else 20.0)
    run.agents_drained(1.0 + n * 0.1 + 1.0)
    v = check(run, tmp_path)
    assert_only(v, ("commit-latency", None))
    assert v["checks"]["latency"]["commit_over_budget"] == n // 10
    assert details(v, "commit-latency")[0].startswith(f"{n // 10} of {n} healthy-window ops over the 100 ms")


def test_hundreds_of_ops_with_the_p99_far_over_budget_fail(tmp_path: Path) -> None:
    run = RunDir(budgets={"intent_ms": 50, "commit_ms": 100})
    for i in range(500):
        slow = i % 20 == 7  # 5 %
        run.intent(
            f"c{i}", 1.0 + i * 0.01, latency_ms=400.0 if slow else 20.0, quorum_ms=300.0 if slow else 5.0
        )
    run.agents_drained(10.0)
    v = check(run, tmp_path)
    assert_only(v, ("commit-latency", None), ("intent-latency", None))
    latency = v["checks"]["latency"]
    assert (latency["commit_values"], latency["commit_over_budget"]) == (500, 25)
    assert latency["commit_p_value"] < 1e-9 and latency["intent_p_value"] < 1e-9


def test_no_healthy_value_is_valid_and_says_nothing_was_judged(tmp_path: Path) -> None:
    run = RunDir()
    run.start("f1", 0.5, "crash", evidence={"container": "agent-1", "state": "exited"})
    run.intent("x", 1.0, latency_ms=5000.0, quorum_ms=900.0)
    run.agents_drained(2.0)
    v = check(run, tmp_path)
    assert_only(v)
    latency = v["checks"]["latency"]
    assert latency["commit_values"] == latency["intent_values"] == 0
    assert latency["commit_not_judged"] == latency["intent_not_judged"] == "no healthy-window values"
    assert latency["commit_p99_ms"] is None and "commit_p_value" not in latency


def test_pending_commit_answers_are_not_judged_against_the_commit_budget(tmp_path: Path) -> None:
    run = healthy()
    run.intent("slow", 2.5, latency_ms=600.0, outcome="pending-commit")
    assert_only(check(run, tmp_path))


def _grace_run(slow_at: float) -> RunDir:
    """A fault 10..20 (grace 5) that bites (an info answer inside), 100 fast commits before it and
    eight slow ones from slow_at (over 0.7 s): a commit-latency anomaly wherever they count."""
    run = RunDir(budgets={"recovery_grace_s": 5})
    for i in range(100):
        run.intent(f"a{i}", 1.0 + i * 0.05)
    run.start("f1", 10.0).stop("f1", 20.0)
    run.invoke("timeout", 12.0).info("timeout", 14.0)
    for i in range(8):
        run.intent(f"slow-{i}", slow_at + i * 0.1, latency_ms=600.0)
    run.agents_drained(30.0)
    return run


def test_an_op_invoked_inside_the_grace_period_does_not_count_for_latency(tmp_path: Path) -> None:
    v = check(_grace_run(24.0), tmp_path)
    assert_only(v)
    assert v["checks"]["latency"]["commit_values"] == 100


def test_an_op_invoked_after_the_grace_period_counts_for_latency(tmp_path: Path) -> None:
    v = check(_grace_run(26.0), tmp_path)
    assert_only(v, ("commit-latency", None))
    assert v["checks"]["latency"]["commit_values"] == 108


def test_an_op_invoked_during_a_fault_does_not_count_for_latency(tmp_path: Path) -> None:
    v = check(_grace_run(15.0), tmp_path)
    assert_only(v)


def test_an_open_ended_fault_leaves_no_healthy_window_after_it(tmp_path: Path) -> None:
    """No stop: the fault is active to the end of the history, so the slow commit long after its
    start is not judged; its window reaches the info answer at t=100, so it did bite; and there is
    no stop to drain after."""
    run = RunDir()
    for i in range(100):
        run.intent(f"a{i}", 1.0 + i * 0.05)
    run.start("f1", 10.0, "crash")
    for i in range(8):  # a commit-latency anomaly, were they judged
        run.intent(f"slow-{i}", 50.0 + i, latency_ms=900.0)
    run.invoke("late", 100.0).info("late", 102.0)
    run.sample(101.0, "agent-1", buffer_depth=0, buffer_cap=256)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["latency"]["commit_values"] == 100
    assert v["checks"]["effects"]["faults"]["f1"]["stop"] is None
    assert "answers" in v["checks"]["effects"]["faults"]["f1"]["effects"]
    assert "drained_after_s" not in v["checks"]["expectations"]


def test_an_open_ended_fault_with_nothing_happening_is_no_effect(tmp_path: Path) -> None:
    run = healthy(n=10)
    run.start("f1", 3.0, "crash")
    v = check(run, tmp_path)
    assert_only(v, ("no-effect", None))
    assert "f1 (crash, t=3 to the end" in details(v, "no-effect")[0]


# --- expectations -------------------------------------------------------------------------------


def test_expectation_min_committed(tmp_path: Path) -> None:
    run = healthy(n=5)
    run.scenario["expect"] = {"min_committed": 6}
    run.invoke("x", 2.5).fail("x", 2.6)
    v = check(run, tmp_path)
    assert_only(v, ("expectation", None))
    assert details(v, "expectation")[0].startswith("min_committed: 5 intents ended committed")


def test_expectation_min_committed_met(tmp_path: Path) -> None:
    run = healthy(n=5)
    run.scenario["expect"] = {"min_committed": 5}
    assert_only(check(run, tmp_path))


@pytest.mark.parametrize(
    ("rule", "outcome"), [("aborts", "aborted"), ("rejections", "rejected")]
)  # fmt: skip
def test_expectation_forbidden(tmp_path: Path, rule: str, outcome: str) -> None:
    run = healthy()
    run.scenario["expect"] = {rule: "forbidden"}
    run.invoke("x", 2.5).fail("x", 2.6, outcome=outcome)
    v = check(run, tmp_path)
    assert_only(v, ("expectation", None))
    assert details(v, "expectation")[0].startswith(f"{rule}: forbidden, yet 1 intents were {outcome}")


@pytest.mark.parametrize(("rule", "outcome"), [("aborts", "aborted"), ("rejections", "rejected")])
def test_expectation_expected(tmp_path: Path, rule: str, outcome: str) -> None:
    run = healthy()
    run.scenario["expect"] = {rule: "expected"}
    v = check(run, tmp_path)
    assert_only(v, ("expectation", None))
    assert details(v, "expectation")[0].startswith(f"{rule}: expected, yet no intent was {outcome}")
    run.invoke("x", 2.5).fail("x", 2.6, outcome=outcome)
    assert_only(check(run, tmp_path / "again"))


@pytest.mark.parametrize(("rule", "outcome"), [("aborts", "rejected"), ("rejections", "aborted")])
def test_a_forbidden_outcome_is_only_its_own(tmp_path: Path, rule: str, outcome: str) -> None:
    run = healthy()
    run.scenario["expect"] = {rule: "forbidden"}
    run.invoke("x", 2.5).fail("x", 2.6, outcome=outcome)
    assert_only(check(run, tmp_path))


def _drain_run(drained_at: float) -> RunDir:
    """A fault 2..4 whose buffer (its sign) empties only at drained_at."""
    run = RunDir(expect={"drained_within_s": 15})
    for i in range(5):
        run.intent(f"a{i}", 1.0 + i * 8)
    run.start("f1", 2.0).stop("f1", 4.0)
    run.sample(1.0, "agent-1", buffer_depth=0, buffer_cap=256)
    for t in range(3, int(drained_at)):
        run.sample(float(t), "agent-1", buffer_depth=5, buffer_cap=256)
    run.sample(drained_at, "agent-1", buffer_depth=0, buffer_cap=256)
    return run


def test_expectation_drained_within_s(tmp_path: Path) -> None:
    v = check(_drain_run(30.0), tmp_path)
    assert_only(v, ("expectation", None))
    assert details(v, "expectation")[0].startswith("drained_within_s: buffers empty within 15s")
    assert v["checks"]["expectations"]["drained_after_s"] == 26.0


def test_expectation_drained_within_s_met(tmp_path: Path) -> None:
    v = check(_drain_run(19.0), tmp_path)
    assert_only(v)
    assert v["checks"]["expectations"]["drained_after_s"] == 15.0


def test_expectation_drained_never(tmp_path: Path) -> None:
    """Never drained: the rule is broken, and the last sample is undrained."""
    run = _drain_run(30.0)
    run.samples = [s for s in run.samples if s["t"] != 30.0]
    v = check(run, tmp_path)
    assert_only(v, ("expectation", None), ("undrained", None))
    assert "seen never, in the samples" in details(v, "expectation")[0]


# --- leak ---------------------------------------------------------------------------------------


def _soak(duration: float, rss_growth_per_s: float) -> RunDir:
    run = RunDir()
    for i in range(5):
        run.intent(f"a{i}", 1.0 + i)
    for t in range(0, int(duration) + 1, 10):
        run.sample(
            float(t),
            "agent-1",
            buffer_depth=0,
            buffer_cap=256,
            rss_bytes=60e6 + rss_growth_per_s * t,
            open_fds=31,
        )
    return run


def test_leak(tmp_path: Path) -> None:
    v = check(_soak(400, 1e6), tmp_path)
    assert_only(v, ("leak", None))
    assert details(v, "leak")[0].startswith("agent-1 rss_bytes: fitted growth 320,000,000 over 320s")


def test_a_short_run_is_not_judged_for_leaks(tmp_path: Path) -> None:
    v = check(_soak(100, 1e6), tmp_path)
    assert_only(v)
    assert v["checks"]["leak"]["judged"] == {}


def test_a_steady_long_run_is_no_leak(tmp_path: Path) -> None:
    v = check(_soak(400, 1e3), tmp_path)
    assert_only(v)
    assert "agent-1.rss_bytes" in v["checks"]["leak"]["judged"]


@pytest.mark.parametrize("store", ["surrealdb", "analytics"])
def test_a_store_growing_with_its_data_is_reported_not_judged_but_its_fds_are(
    tmp_path: Path, store: str
) -> None:
    run = _soak(400, 0.0)
    for t in range(0, 401, 10):
        run.sample(float(t), store, rss_bytes=70e6 + 1e6 * t, open_fds=40 + t)
    v = check(run, tmp_path)
    assert_only(v, ("leak", None))  # the fds, not the memory
    assert details(v, "leak")[0].startswith(f"{store} open_fds: fitted growth 320")
    figures = v["checks"]["leak"]
    assert figures["reported"] == {f"{store}.rss_bytes": 320_000_000.0}
    assert f"{store}.rss_bytes" not in figures["judged"]


# --- retention ----------------------------------------------------------------------------------


def test_retention_backlog_reaching_max_msgs(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["stream"] = {"max_msgs": 100}
    for t, pending in ((1.0, 0), (2.0, 40), (3.0, 100), (4.0, 0)):
        run.sample(t, "jetstream", stream_msgs=5, stream_bytes=500, consumer_num_pending=pending)
    v = check(run, tmp_path)
    assert_only(v, ("retention", None))
    assert details(v, "retention") == ["at t=3 the consumer still needed 100 messages >= max_msgs 100"]


def test_retention_below_the_limit(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["stream"] = {"max_msgs": 100}
    for t, pending in ((1.0, 0), (2.0, 40), (3.0, 99), (4.0, 0)):
        run.sample(t, "jetstream", stream_msgs=5, stream_bytes=500, consumer_num_pending=pending)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["retention"]["peak_backlog"] == 99


def test_retention_is_not_judged_without_a_limit(tmp_path: Path) -> None:
    run = healthy()
    run.sample(3.0, "jetstream", stream_msgs=5, consumer_num_pending=100_000)
    run.sample(4.0, "jetstream", stream_msgs=5, consumer_num_pending=0)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["retention"]["judged"] is False


def test_retention_projects_when_the_stream_reaches_its_limits_at_the_observed_rate(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["stream"] = {"max_msgs": 1000, "max_bytes": 10_000}
    for i in range(6):  # 10 messages and 100 bytes a second; the bytes limit is reached at the end
        run.sample(float(i), "jetstream", stream_msgs=10 * i, stream_bytes=100 * i if i < 5 else 10_000)
    figures = check(run, tmp_path)["checks"]["retention"]
    assert figures["stream_msgs_last"] == 50 and figures["stream_msgs_per_s"] == 10
    assert figures["stream_msgs_limit_in_s"] == 95  # (1000 - 50) / 10
    assert figures["stream_bytes_limit_in_s"] == 0  # reached: legal, the old messages go
    assert check(run, tmp_path)["valid"] is True  # no consumer needed them
