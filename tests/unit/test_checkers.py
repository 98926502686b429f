"""The checkers on hand-made run directories (../shared/RUN-FORMAT.md): a valid run, every
reconciliation anomaly of the format's table, info ops and retention in reconciliation. The other
checkers are in test_checkers_health.py, the effects in test_checkers_faults.py, bad and missing
files, crashing checkers and waivers in test_checkers_files.py.

Each test asserts the exact anomalies, by kind and cid, and that nothing else is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import store
from harness.checkers import CHECKERS, KINDS, exit_code, write_verdict
from tests.unit.judging import AGENTS, assert_only, check, details, healthy
from tests.unit.rundirs import RunDir

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
        "telemetry-silent", "telemetry-mismatch", "cdc-lost", "cdc-order", "analytics-mismatch",
    }  # fmt: skip
    assert set(KINDS) == table


def test_the_docs_kinds_table_names_every_kind() -> None:
    """docs/run-format.md's table of anomaly kinds names each kind a checker reports (the doc must
    stay true), and says of none that it is not judged."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "run-format.md").read_text()
    table = doc.split("Anomaly kinds, with these exact names:", 1)[1].split("\n\n", 2)[1]
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    assert set(rows) == set(KINDS)
    assert not [kind for kind, row in rows.items() if "Not yet judged" in row]


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
    assert f'{field} "other" vs' in details(v, "projection-mismatch")[0]


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
