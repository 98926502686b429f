"""The checkers on hand-made run directories (../shared/RUN-FORMAT.md): every anomaly kind of the
format's table, every rule around them (info ops, open-ended faults, the grace period, retention),
and what a malformed or missing file, or a crashing checker, makes of the verdict.

Each test asserts the exact anomalies, by kind and cid, and that nothing else is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import store
from harness.checkers import CHECKERS, KINDS, exit_code, judge, leak, write_verdict
from harness.checkers.run import Run
from harness.store import RunDirError
from tests.unit.rundirs import RunDir, append_line

AGENTS = ("agent-1", "agent-2")


def healthy(n: int = 5, start: float = 1.0, every: float = 1.0) -> RunDir:
    """n committed intents, one every `every` seconds from `start`, and drained agents at the end."""
    run = RunDir()
    for i in range(n):
        run.intent(f"ok-{i}", start + i * every)
    run.agents_drained(start + n * every, AGENTS)
    return run


def check(run: RunDir, tmp_path: Path) -> dict[str, Any]:
    return judge(run.write(tmp_path))


def found(verdict: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((a["kind"], a.get("cid")) for a in verdict["anomalies"])


def assert_only(verdict: dict[str, Any], *expected: tuple[str, str | None]) -> None:
    """Exactly these anomalies, nothing else; and every check could judge."""
    assert found(verdict) == sorted(expected), verdict["anomalies"]
    assert [name for name, c in verdict["checks"].items() if c["valid"] == "unknown"] == []
    assert verdict["valid"] is (not expected)


def details(verdict: dict[str, Any], kind: str) -> list[str]:
    return [a["detail"] for a in verdict["anomalies"] if a["kind"] == kind]


# --- a valid run --------------------------------------------------------------------------------


def test_a_healthy_run_is_valid(tmp_path: Path) -> None:
    v = check(healthy(), tmp_path)
    assert_only(v)
    assert v["checks"]["reconciliation"]["accepted"] == 5
    assert set(v["checks"]) == {c.name for c in CHECKERS}


def test_every_kind_of_the_format_is_known() -> None:
    table = {
        "lost", "unprojected", "stream-duplicate", "store-duplicate", "phantom", "unknown-cid",
        "unsourced-write", "projection-mismatch", "seq-mismatch", "undrained", "buffer-overflow",
        "intent-latency", "commit-latency", "expectation", "leak", "retention", "no-effect",
    }  # fmt: skip
    assert set(KINDS) == table


def test_a_run_without_samples_is_valid(tmp_path: Path) -> None:
    """samples.jsonl may be empty: with no buffer to watch, nothing is undrained (a run rebuilt
    from another system's logs has none)."""
    run = RunDir()
    run.intent("a", 1.0)
    assert_only(check(run, tmp_path))


def test_write_verdict_writes_what_judge_returns(tmp_path: Path) -> None:
    path = healthy().write(tmp_path)
    v = write_verdict(path)
    assert store.read_json(path / store.VERDICT) == v
    assert exit_code(v["valid"]) == 0


# --- reconciliation: each kind --------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["committed", "pending-commit"])
def test_lost(tmp_path: Path, outcome: str) -> None:
    run = healthy()
    run.intent("x", 2.5, outcome=outcome, land=False)
    v = check(run, tmp_path)
    assert_only(v, ("lost", "x"))
    assert f"accepted {outcome} by agent-1 at t=2.51, absent from the stream" in details(v, "lost")[0]
    assert v["checks"]["reconciliation"]["lost"] == 1
    assert exit_code(v["valid"]) == 1


def test_lost_with_its_row_in_the_store_is_also_an_unsourced_write(tmp_path: Path) -> None:
    run = healthy()
    run.intent("x", 2.5, land=False)
    run.row("x", stream_seq=None)
    assert_only(check(run, tmp_path), ("lost", "x"), ("unsourced-write", "x"))


def test_unprojected(tmp_path: Path) -> None:
    run = healthy()
    run.intent("x", 2.5, project=False)
    assert_only(check(run, tmp_path), ("unprojected", "x"))


def test_stream_duplicate(tmp_path: Path) -> None:
    run = healthy()
    run.intent("x", 2.5)
    run.message("x")
    v = check(run, tmp_path)
    assert_only(v, ("stream-duplicate", "x"))
    assert "2 messages in the stream" in details(v, "stream-duplicate")[0]


def test_stream_duplicate_is_no_anomaly_without_exactly_once(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["invariants"] = {"stream_exactly_once": False}
    run.intent("x", 2.5)
    run.message("x")
    assert_only(check(run, tmp_path))


def test_store_duplicate(tmp_path: Path) -> None:
    run = healthy()
    seq = run.intent("x", 2.5)
    run.row("x", stream_seq=seq)
    assert_only(check(run, tmp_path), ("store-duplicate", "x"))


@pytest.mark.parametrize("outcome", ["aborted", "rejected"])
def test_phantom_in_the_stream_and_the_store(tmp_path: Path, outcome: str) -> None:
    run = healthy()
    run.invoke("x", 2.5).fail("x", 2.6, outcome=outcome)
    run.row("x", stream_seq=run.message("x"))
    v = check(run, tmp_path)
    assert_only(v, ("phantom", "x"))
    assert details(v, "phantom")[0].startswith(f"{outcome} by agent-1 at t=2.6")


def test_phantom_in_the_stream_only(tmp_path: Path) -> None:
    """A failed op is never unprojected: its message is the phantom, nothing else."""
    run = healthy()
    run.invoke("x", 2.5).fail("x", 2.6)
    run.message("x")
    assert_only(check(run, tmp_path), ("phantom", "x"))


def test_phantom_in_the_store_only_is_also_an_unsourced_write(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5).fail("x", 2.6)
    run.row("x", stream_seq=None)
    assert_only(check(run, tmp_path), ("phantom", "x"), ("unsourced-write", "x"))


def test_unknown_cid(tmp_path: Path) -> None:
    run = healthy()
    run.row("ghost", stream_seq=run.message("ghost"))
    v = check(run, tmp_path)
    assert_only(v, ("unknown-cid", "ghost"))
    assert "no operation invoked it" in details(v, "unknown-cid")[0]


def test_unknown_cid_in_the_stream_only(tmp_path: Path) -> None:
    run = healthy()
    run.message("ghost")
    assert_only(check(run, tmp_path), ("unknown-cid", "ghost"))


def test_unknown_cid_in_the_store_only_is_also_an_unsourced_write(tmp_path: Path) -> None:
    run = healthy()
    run.row("ghost", stream_seq=99)
    assert_only(check(run, tmp_path), ("unknown-cid", "ghost"), ("unsourced-write", "ghost"))


def test_a_message_without_a_cid_belongs_to_no_intent(tmp_path: Path) -> None:
    run = healthy()
    run.message(None)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["reconciliation"]["stream_msgs"] == 6


def test_unsourced_write(tmp_path: Path) -> None:
    """An info op is never lost, but a store row with no message is a second writer's."""
    run = healthy()
    run.invoke("x", 2.5).info("x", 4.5)
    run.row("x", stream_seq=42)
    v = check(run, tmp_path)
    assert_only(v, ("unsourced-write", "x"))
    assert "stream_seq 42" in details(v, "unsourced-write")[0]


@pytest.mark.parametrize("field", ["key", "value"])
def test_projection_mismatch(tmp_path: Path, field: str) -> None:
    run = healthy()
    run.invoke("x", 2.5)
    seq = run.message("x")
    run.ok("x", 2.6, stream_seq=seq)
    run.row("x", stream_seq=seq, **{field: "other"})
    v = check(run, tmp_path)
    assert_only(v, ("projection-mismatch", "x"))
    assert f"{field} 'other' vs" in details(v, "projection-mismatch")[0]


def test_a_row_follows_the_message_its_stream_seq_names(tmp_path: Path) -> None:
    """Without exactly-once, a row matching its own (second) message is no mismatch; one matching
    neither is."""
    run = healthy()
    run.scenario["invariants"] = {"stream_exactly_once": False}
    run.invoke("x", 2.5)
    first = run.message("x")
    second = run.message("x", value=2)
    run.ok("x", 2.6, stream_seq=first)
    run.row("x", stream_seq=second, value=2)
    run.invoke("y", 2.7)
    run.message("y")
    second = run.message("y", value=2)
    run.ok("y", 2.8, stream_seq=second)
    run.row("y", stream_seq=second, value=3)
    assert_only(check(run, tmp_path), ("projection-mismatch", "y"))


def test_seq_mismatch(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5)
    seq = run.message("x")
    run.ok("x", 2.6, stream_seq=seq + 100)
    run.row("x", stream_seq=seq)
    v = check(run, tmp_path)
    assert_only(v, ("seq-mismatch", "x"))
    assert f"answered stream_seq {seq + 100}" in details(v, "seq-mismatch")[0]


def test_a_cid_with_no_message_is_lost_not_seq_mismatch(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5).ok("x", 2.6, stream_seq=77)
    assert_only(check(run, tmp_path), ("lost", "x"))


# --- info ops -----------------------------------------------------------------------------------


def test_an_info_op_that_landed_is_recovered(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5).info("x", 4.5)
    run.row("x", stream_seq=run.message("x"))
    v = check(run, tmp_path)
    assert_only(v)
    rec = v["checks"]["reconciliation"]
    assert (rec["unknown"], rec["recovered"]) == (1, 1)


def test_an_info_op_that_did_not_land_is_never_lost(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5).info("x", 4.5)
    v = check(run, tmp_path)
    assert_only(v)
    rec = v["checks"]["reconciliation"]
    assert (rec["unknown"], rec["recovered"], rec["lost"]) == (1, 0, 0)


def test_an_info_cid_in_the_stream_but_not_the_store_is_unprojected(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5).info("x", 4.5)
    run.message("x")
    v = check(run, tmp_path)
    assert_only(v, ("unprojected", "x"))
    assert "outcome unknown (info)" in details(v, "unprojected")[0]


def test_an_info_cid_must_be_once_in_the_store(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("x", 2.5).info("x", 4.5)
    seq = run.message("x")
    run.row("x", stream_seq=seq).row("x", stream_seq=seq)
    assert_only(check(run, tmp_path), ("store-duplicate", "x"))


@pytest.mark.parametrize("lands", ["nowhere", "both", "stream"])
def test_an_invoke_with_no_completion_counts_as_info(tmp_path: Path, lands: str) -> None:
    run = healthy()
    run.invoke("x", 2.5)
    if lands != "nowhere":
        seq = run.message("x")
        if lands == "both":
            run.row("x", stream_seq=seq)
    v = check(run, tmp_path)
    assert_only(v, *([("unprojected", "x")] if lands == "stream" else []))
    rec = v["checks"]["reconciliation"]
    assert (rec["unknown"], rec["recovered"]) == (1, int(lands != "nowhere"))


# --- retention in reconciliation ----------------------------------------------------------------


def _aged_out(limited: bool) -> RunDir:
    """Cids a and b whose messages left the stream (seq 1, 2); c and d still there (seq 5, 6)."""
    run = RunDir(stream={"max_msgs": 1000} if limited else {})
    run.invoke("a", 1.0).ok("a", 1.1, stream_seq=1).row("a", stream_seq=1)
    run.invoke("b", 1.2).info("b", 3.2).row("b", stream_seq=2)
    for i, cid in enumerate(("c", "d")):
        run.invoke(cid, 2.0 + i)
        seq = run.message(cid, seq=5 + i)
        run.ok(cid, 2.1 + i, stream_seq=seq).row(cid, stream_seq=seq)
    run.agents_drained(6.0, AGENTS)
    return run


def test_with_a_stream_limit_rows_below_the_lowest_seq_are_judged_by_the_store(tmp_path: Path) -> None:
    v = check(_aged_out(limited=True), tmp_path)
    assert_only(v)
    assert v["checks"]["reconciliation"]["retained_only_in_store"] == 2


def test_without_a_stream_limit_rows_below_the_lowest_seq_are_lost_and_unsourced(tmp_path: Path) -> None:
    v = check(_aged_out(limited=False), tmp_path)
    assert_only(v, ("lost", "a"), ("unsourced-write", "a"), ("unsourced-write", "b"))


def test_with_a_stream_limit_a_row_above_the_lowest_seq_is_still_unsourced(tmp_path: Path) -> None:
    run = _aged_out(limited=True)
    run.invoke("e", 4.0).ok("e", 4.1, stream_seq=9).row("e", stream_seq=9)
    assert_only(check(run, tmp_path), ("lost", "e"), ("unsourced-write", "e"))


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
    run = RunDir(budgets={"intent_ms": 50})
    for i in range(100):  # two slow of a hundred: the p99 (the 99th value) is slow
        run.intent(f"i{i}", 1.0 + i * 0.1, quorum_ms=60.0 if i in (40, 80) else 5.0)
    run.agents_drained(12.0)
    v = check(run, tmp_path)
    assert_only(v, ("intent-latency", None))
    assert v["checks"]["latency"]["intent_p99_ms"] == 60.0


def test_one_slow_value_of_a_hundred_is_within_the_p99(tmp_path: Path) -> None:
    run = RunDir(budgets={"intent_ms": 50})
    for i in range(100):
        run.intent(f"i{i}", 1.0 + i * 0.1, quorum_ms=60.0 if i == 40 else 5.0)
    run.agents_drained(12.0)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["latency"]["intent_p99_ms"] == 5.0


def test_commit_latency(tmp_path: Path) -> None:
    run = healthy(n=100, every=0.1)
    run.intent("slow", 2.55, latency_ms=600.0)
    run.intent("slower", 2.65, latency_ms=700.0)
    v = check(run, tmp_path)
    assert_only(v, ("commit-latency", None))
    assert v["checks"]["latency"]["commit_p99_ms"] == pytest.approx(600.0)


def test_fewer_than_a_hundred_values_are_not_judged(tmp_path: Path) -> None:
    """Their nearest-rank p99 would be their maximum: one outlier would decide the verdict."""
    run = healthy(n=98, every=0.1)
    run.intent("slow", 2.55, latency_ms=600.0)
    v = check(run, tmp_path)
    assert_only(v)
    latency = v["checks"]["latency"]
    assert latency["commit_values"] == 99
    assert latency["commit_not_judged"] == "fewer than 100 healthy-window values"


def test_pending_commit_answers_are_not_judged_against_the_commit_budget(tmp_path: Path) -> None:
    run = healthy()
    run.intent("slow", 2.5, latency_ms=600.0, outcome="pending-commit")
    assert_only(check(run, tmp_path))


def _grace_run(slow_at: float) -> RunDir:
    """A fault 10..20 (grace 5) that bites (an info answer inside), 100 fast commits before it and
    two slow ones at slow_at."""
    run = RunDir(budgets={"recovery_grace_s": 5})
    for i in range(100):
        run.intent(f"a{i}", 1.0 + i * 0.05)
    run.start("f1", 10.0).stop("f1", 20.0)
    run.invoke("timeout", 12.0).info("timeout", 14.0)
    run.intent("slow", slow_at, latency_ms=600.0)
    run.intent("slower", slow_at + 0.1, latency_ms=700.0)
    run.agents_drained(30.0)
    return run


def test_an_op_invoked_inside_the_grace_period_does_not_count_for_latency(tmp_path: Path) -> None:
    v = check(_grace_run(24.0), tmp_path)
    assert_only(v)
    assert v["checks"]["latency"]["commit_values"] == 100


def test_an_op_invoked_after_the_grace_period_counts_for_latency(tmp_path: Path) -> None:
    v = check(_grace_run(26.0), tmp_path)
    assert_only(v, ("commit-latency", None))
    assert v["checks"]["latency"]["commit_values"] == 102


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
    run.intent("slow", 50.0, latency_ms=900.0)
    run.intent("slower", 51.0, latency_ms=900.0)
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


def test_a_store_growing_with_its_data_is_reported_not_judged_but_its_fds_are(tmp_path: Path) -> None:
    run = _soak(400, 0.0)
    for t in range(0, 401, 10):
        run.sample(float(t), "surrealdb", rss_bytes=70e6 + 1e6 * t, open_fds=40 + t)
    v = check(run, tmp_path)
    assert_only(v, ("leak", None))  # the fds, not the memory
    assert details(v, "leak")[0].startswith("surrealdb open_fds: fitted growth 320")
    figures = v["checks"]["leak"]
    assert figures["reported"] == {"surrealdb.rss_bytes": 320_000_000.0}
    assert "surrealdb.rss_bytes" not in figures["judged"]


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
        "none of the signs of its kind: answers, latency, buffer, backlog"
    ]
    assert v["checks"]["effects"]["faults"]["f1"]["effects"] == {}


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


# --- malformed and missing files ----------------------------------------------------------------


C1 = {"process": "c1"}
BAD_HISTORY = [
    ("not json", "{not json", "not JSON"),
    ("wrong type", {"t": "soon", "process": "c1", "type": "invoke", "f": "intent", "cid": "z"}, "t: got str"),
    ("missing t", {"process": "c1", "type": "invoke", "f": "intent", "cid": "z"}, "t: missing"),
    ("no invoke", {"t": 9.0, **C1, "type": "ok", "cid": "z", "outcome": "committed"}, "no open invoke"),
    ("bad type", {"t": 9.0, "process": "c1", "type": "done", "cid": "ok-0"}, "type 'done'"),
    ("bad outcome", {"t": 9.0, **C1, "type": "ok", "cid": "ok-0", "outcome": "yes"}, "outcome 'yes'"),
    ("no cid", {"t": 9.0, "process": "c1", "type": "invoke", "f": "intent"}, "without a cid"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "what"), [(b[1], b[2]) for b in BAD_HISTORY], ids=[b[0] for b in BAD_HISTORY]
)
def test_a_malformed_history_line_names_the_file_and_line(tmp_path: Path, line: Any, what: str) -> None:
    run = healthy()
    run.history = [op for op in run.history if op["cid"] != "ok-0" or op["type"] == "invoke"]  # ok-0 open
    path = run.write(tmp_path)
    number = append_line(path, store.HISTORY, line)
    with pytest.raises(RunDirError) as e:
        _ = Run(path).history
    assert e.value.line == number
    assert f"{store.HISTORY}:{number}: " in str(e.value)
    assert what in str(e.value)
    v = judge(path)
    assert v["valid"] == "unknown"
    assert exit_code(v["valid"]) == 2
    assert f"{store.HISTORY}:{number}" in v["checks"]["reconciliation"]["error"]
    assert v["checks"]["reconciliation"]["valid"] == "unknown"


def test_a_fault_stopped_twice(tmp_path: Path) -> None:
    run = healthy()
    run.start("f1", 2.0).stop("f1", 3.0)
    path = run.write(tmp_path)
    number = append_line(path, store.HISTORY, {"t": 9.0, "process": "nemesis", "type": "info", "f": "stop",
                                                "fault": "partition", "fault_id": "f1"})  # fmt: skip
    with pytest.raises(RunDirError, match=rf"{store.HISTORY}:{number}: fault f1 stopped twice"):
        _ = Run(path).history
    assert "stopped twice" in judge(path)["checks"]["effects"]["error"]


def test_a_fault_stopped_before_it_started(tmp_path: Path) -> None:
    path = healthy().write(tmp_path)
    append_line(
        path, store.HISTORY, {"t": 9.0, "process": "nemesis", "type": "info", "f": "stop", "fault_id": "f9"}
    )
    with pytest.raises(RunDirError, match="fault f9 stopped before any start"):
        _ = Run(path).history


def test_a_cid_invoked_twice(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("ok-1", 9.0).ok("ok-1", 9.1, stream_seq=2)
    v = check(run, tmp_path)
    assert v["checks"]["reconciliation"]["valid"] == "unknown"
    assert "cid ok-1 invoked 2 times" in v["checks"]["reconciliation"]["error"]


@pytest.mark.parametrize(
    ("name", "line", "what"),
    [
        (store.STREAM, {"seq": "one", "cid": "a"}, "seq: got str"),
        (store.STREAM, {"cid": "a"}, "seq: missing"),
        (store.STORE, {"cid": "a", "stream_seq": 1.5}, "stream_seq: got float"),
        (store.STORE, "[1, 2]", "the line: got a JSON array, not object"),
        (store.SAMPLES, {"t": 1.0, "source": "agent-1", "buffer_depth": "full"}, "buffer_depth: got str"),
        (store.SAMPLES, {"t": 1.0}, "source: missing"),
    ],
)
def test_a_malformed_line_in_the_other_files(tmp_path: Path, name: str, line: Any, what: str) -> None:
    path = healthy().write(tmp_path)
    number = append_line(path, name, line)
    v = judge(path)
    assert v["valid"] == "unknown"
    errors = [c["error"] for c in v["checks"].values() if "error" in c]
    assert errors
    for error in errors:
        assert f"{name}:{number}: " in error and what in error


def test_a_malformed_scenario(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["expect"] = {"aborts": "maybe"}
    v = check(run, tmp_path)
    assert "expect.aborts: got 'maybe'" in v["checks"]["expectations"]["error"]
    assert v["valid"] == "unknown"


@pytest.mark.parametrize("name", [store.HISTORY, store.STREAM, store.STORE, store.SAMPLES])
def test_a_missing_file_makes_its_readers_unknown(tmp_path: Path, name: str) -> None:
    path = healthy().write(tmp_path)
    (path / name).unlink()
    v = judge(path)
    assert v["valid"] == "unknown"
    assert v["anomalies"] == []
    unknown = {n for n, c in v["checks"].items() if c["valid"] == "unknown"}
    assert unknown
    for n in unknown:
        assert f"{name}: missing" in v["checks"][n]["error"]
    if name == store.STREAM:
        assert v["checks"]["latency"]["valid"] is True  # it reads no stream


def test_a_directory_without_scenario_json_is_not_a_run(tmp_path: Path) -> None:
    path = healthy().write(tmp_path)
    (path / store.SCENARIO).unlink()
    with pytest.raises(RunDirError, match=r"scenario\.json: missing"):
        judge(path)


# --- a crashing checker -------------------------------------------------------------------------


def test_a_crashing_checker_is_unknown_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(samples: Any, metric: str) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(leak, "incarnations", boom)
    run = healthy()
    run.intent("x", 2.5, land=False)
    v = check(run, tmp_path)
    assert v["checks"]["leak"]["valid"] == "unknown"
    assert v["checks"]["leak"]["error"].startswith("ZeroDivisionError: boom (test_checkers.py:")
    others = {n: c["valid"] for n, c in v["checks"].items() if n != "leak"}
    assert others == {**{c.name: True for c in CHECKERS if c.name != "leak"}, "reconciliation": False}
    assert found(v) == [("lost", "x")]
    assert v["valid"] == "unknown"  # not fully checked (docs/run-format.md, "Validity")


def test_a_crashing_checker_alone_makes_the_verdict_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leak, "incarnations", lambda samples, metric: 1 / 0)
    v = check(healthy(), tmp_path)
    assert v["valid"] == "unknown"
    assert v["anomalies"] == []
    assert exit_code(v["valid"]) == 2


# --- waivers ------------------------------------------------------------------------------------


def test_expect_reconciliation_none_waives_the_reconciliation_anomalies_but_keeps_its_figures(
    tmp_path: Path,
) -> None:
    run = healthy()
    run.scenario["expect"] = {"reconciliation": "none"}
    run.intent("x", 2.5, land=False)
    v = check(run, tmp_path)
    assert_only(v)
    rec = v["checks"]["reconciliation"]
    assert (rec["waived"], rec["waived_anomalies"], rec["lost"]) == ("expect.reconciliation: none", 1, 1)


def test_expect_buffers_ignore_waives_buffer_overflow(tmp_path: Path) -> None:
    run = healthy()
    run.scenario["expect"] = {"buffers": "ignore"}
    run.scenario["topology"] = {"buffer_cap": 2}
    run.sample(3.0, "agent-1", buffer_depth=3, buffer_cap=2)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["buffers"]["waived"] == "expect.buffers: ignore"
    # Not waived, the same directory is an overflow.
    run.scenario["expect"] = {}
    assert_only(check(run, tmp_path / "again"), ("buffer-overflow", None))


def test_a_fault_is_unhealthy_from_when_it_was_scheduled_when_it_took_effect_later(tmp_path: Path) -> None:
    """Ops invoked while the nemesis was still applying a fault of several parts are not healthy."""
    run = RunDir()
    for i in range(100):
        run.intent(f"a{i}", 1.0 + i * 0.05)
    run.intent("while-applying-1", 9.7, latency_ms=900.0)
    run.intent("while-applying-2", 9.8, latency_ms=900.0)
    run.start("f1", 10.0, "latency", scheduled=9.5).stop("f1", 12.0, "latency")
    run.agents_drained(13.0)
    v = check(run, tmp_path)
    assert_only(v)  # the two slow commits bit for the fault, and count for no budget
    assert v["checks"]["latency"]["commit_values"] == 100
    assert "latency" in v["checks"]["effects"]["faults"]["f1"]["effects"]
