"""The judge on odd histories (issue 27): time runs forward, a seq below 1 is no seq, and one
malformed answer of the system under test is that operation's problem, not the run's
(../shared/RUN-FORMAT.md; docs/run-format.md, "Operations")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import store
from harness.checkers import exit_code, judge
from harness.checkers.run import Run
from harness.load.ops import Intent, completion
from harness.store import RunDirError
from tests.unit.judging import assert_only, check, details, found, healthy
from tests.unit.rundirs import RunDir, append_line

BROKE = "the agent's answer broke the contract:"

# --- time runs forward --------------------------------------------------------------------------


def _appended(tmp_path: Path, *lines: dict[str, Any] | str) -> tuple[Path, int]:
    """A healthy run directory with these lines added to its history; the last line's number."""
    path = healthy().write(tmp_path)
    number = 0
    for line in lines:
        number = append_line(path, store.HISTORY, line)
    return path, number


def _unjudgeable(path: Path, number: int, *words: str) -> None:
    """The history is malformed at that line: named in the error, and `check` exits 2."""
    with pytest.raises(RunDirError) as e:
        _ = Run(path).history
    assert e.value.line == number and f"{store.HISTORY}:{number}: " in str(e.value)
    for word in words:
        assert word in str(e.value)
    v = judge(path)
    assert exit_code(v["valid"]) == 2
    assert f"{store.HISTORY}:{number}" in v["checks"]["reconciliation"]["error"]


NEMESIS = {"process": "nemesis", "type": "info", "fault": "partition", "fault_id": "f9"}


def test_a_fault_stopped_before_its_start_time_is_malformed(tmp_path: Path) -> None:
    path, number = _appended(
        tmp_path, {"t": 9.0, **NEMESIS, "f": "start"}, {"t": 8.0, **NEMESIS, "f": "stop"}
    )
    _unjudgeable(path, number, "fault f9 stopped at t=8, before it started at t=9")


def test_a_fault_stopped_at_its_start_is_fine(tmp_path: Path) -> None:
    path, _ = _appended(tmp_path, {"t": 9.0, **NEMESIS, "f": "start"}, {"t": 9.0, **NEMESIS, "f": "stop"})
    assert Run(path).history.faults[0].stop == 9.0


INVOKE = {"process": "c1", "type": "invoke", "f": "intent", "cid": "late", "key": "k", "value": 1}


@pytest.mark.parametrize(
    "completion",
    [
        {"type": "ok", "outcome": "committed", "stream_seq": 1},
        {"type": "fail", "outcome": "aborted"},
        {"type": "info", "error": "timeout"},
    ],
)
def test_a_completion_before_its_invoke_is_malformed(tmp_path: Path, completion: dict[str, Any]) -> None:
    done = {"t": 8.5, "process": "c1", "f": "intent", "cid": "late", **completion}
    path, number = _appended(tmp_path, {"t": 9.0, **INVOKE}, done)
    _unjudgeable(path, number, f"{completion['type']} of cid late at t=8.5, before its invoke at t=9")


@pytest.mark.parametrize("t", ["NaN", "Infinity", "-Infinity", "1e999", '"1.0"', "null"])
def test_a_time_that_is_not_a_finite_number_is_malformed(tmp_path: Path, t: str) -> None:
    path, number = _appended(
        tmp_path, '{"t": ' + t + ', "process": "c1", "type": "invoke", "f": "intent", "cid": "z"}'
    )
    _unjudgeable(path, number)


@pytest.mark.parametrize("t", ["NaN", "Infinity", "1e999"])
def test_a_sample_time_that_is_not_a_finite_number_is_malformed(tmp_path: Path, t: str) -> None:
    path = healthy().write(tmp_path)
    number = append_line(path, store.SAMPLES, '{"t": ' + t + ', "source": "agent-1", "buffer_depth": 0}')
    v = judge(path)
    assert v["valid"] == "unknown"
    assert f"{store.SAMPLES}:{number}: " in v["checks"]["buffers"]["error"]


# --- a seq below 1 is no seq, and never "absent" ------------------------------------------------


@pytest.mark.parametrize("seq", [0, -1, -5, 2**63, 2**64])
@pytest.mark.parametrize(("name", "field"), [(store.STREAM, "seq"), (store.STORE, "stream_seq")])
def test_a_seq_outside_jetstreams_range_in_stream_or_store_is_malformed(
    tmp_path: Path, name: str, field: str, seq: int
) -> None:
    path = healthy().write(tmp_path)
    number = append_line(path, name, {"cid": "ok-0", "key": "k-ok-0", "value": 1, field: seq})
    v = judge(path)
    assert v["valid"] == "unknown"
    error = v["checks"]["reconciliation"]["error"]
    assert f"{name}:{number}: {field}: got {seq}" in error and "from 1" in error


def test_a_forged_store_seq_of_minus_one_is_not_taken_for_an_absent_one(tmp_path: Path) -> None:
    """With a stream limit, a row whose stream_seq is below the stream's lowest is judged by the store
    alone; -1 used to mean "no stream_seq", and a row carrying it slipped out of that rule."""
    run = healthy()
    run.scenario["stream"] = {"max_msgs": 3}
    run.invoke("old", 0.5).ok("old", 0.6, stream_seq=1)
    run.row("old", stream_seq=-1)
    v = check(run, tmp_path)
    assert v["valid"] == "unknown"
    assert "stream_seq: got -1" in v["checks"]["reconciliation"]["error"]


@pytest.mark.parametrize(
    ("seq", "what"),
    [
        (-1, "stream_seq: got -1, not an integer from 1"),
        (0, "stream_seq: got 0, not an integer from 1"),
        (True, "stream_seq: got true, not an integer"),
        ("6", 'stream_seq: got a string ("6"), not an integer'),
        (6.0, "stream_seq: got 6.0, not an integer"),
        (2**64, "stream_seq: got 18446744073709551616, not an integer"),
        ([6], "stream_seq: got an array, not an integer"),
    ],
)
def test_an_answered_seq_that_is_no_seq_is_that_operations_problem(
    tmp_path: Path, seq: Any, what: str
) -> None:
    """Not "absent" (which would pass unremarked), not the run's problem (exit 2): an `expectation`
    anomaly of that op, its value ignored; the rest is judged."""
    run = healthy()
    run.invoke("x", 2.5)
    run.message("x")
    run.history.append({"t": 2.6, "process": "c1", "type": "ok", "f": "intent", "cid": "x",
                        "outcome": "committed", "stream_seq": seq, "quorum_ms": 5.0})  # fmt: skip
    run.row("x", stream_seq=run.stream[-1]["seq"])
    v = check(run, tmp_path)
    assert_only(v, ("expectation", "x"))
    (detail,) = details(v, "expectation")
    assert detail.startswith(f"{BROKE} {what}") and "cid x" in detail


# --- one malformed answer is that operation's problem -------------------------------------------


def _contract_info(run: RunDir, cid: str, t: float, contract: Any) -> None:
    run.invoke(cid, t)
    run.history.append({"t": t + 0.1, "process": "c1", "type": "info", "f": "intent", "cid": cid,
                        "agent": "agent-1", "contract": contract})  # fmt: skip


def test_a_contract_breaking_answer_and_a_lost_intent_are_both_found(tmp_path: Path) -> None:
    run = healthy()
    run.intent("gone", 2.5, land=False)
    _contract_info(run, "odd", 3.5, "stream_seq: got a string, not an integer")
    v = check(run, tmp_path)
    assert_only(v, ("lost", "gone"), ("expectation", "odd"))
    assert exit_code(v["valid"]) == 1
    (detail,) = details(v, "expectation")
    assert detail.startswith(f"{BROKE} stream_seq: got a string, not an integer (cid odd, t=3.6")
    assert v["checks"]["expectations"]["contract_broken"] == 1
    assert v["checks"]["reconciliation"]["unknown"] == 1  # the op's outcome is not known


def test_a_contract_breaking_answer_whose_intent_landed_is_recovered_once(tmp_path: Path) -> None:
    run = healthy()
    _contract_info(run, "odd", 3.5, "quorum_ms: got a string, not a number")
    seq = run.message("odd")
    run.row("odd", stream_seq=seq)
    v = check(run, tmp_path)
    assert_only(v, ("expectation", "odd"))
    assert v["checks"]["reconciliation"]["recovered"] == 1


@pytest.mark.parametrize("contract", [{"field": "stream_seq"}, 42, "x" * 5000])
def test_a_contract_of_any_shape_is_reported_and_kept_short(tmp_path: Path, contract: Any) -> None:
    run = healthy()
    _contract_info(run, "odd", 3.5, contract)
    v = check(run, tmp_path)
    assert_only(v, ("expectation", "odd"))
    (detail,) = details(v, "expectation")
    assert detail.startswith(BROKE) and "cid odd" in detail and len(detail) < 400


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("stream_seq", "88", 'stream_seq: got a string ("88"), not an integer'),
        ("quorum_ms", "21.5", 'quorum_ms: got a string ("21.5"), not a number of milliseconds >= 0'),
        ("quorum_ms", -3, "quorum_ms: got -3, not a number of milliseconds >= 0"),
        ("quorum_ms", True, "quorum_ms: got true, not a number"),
        ("quorum_ms", {"ms": 2}, "quorum_ms: got an object, not a number"),
    ],
)
def test_an_older_loads_wrongly_typed_answer_does_not_hide_a_lost_intent(
    tmp_path: Path, field: str, value: Any, what: str
) -> None:
    """An `ok` of an older or foreign load with a wrongly typed field: before, exit 2 and the `lost`
    next to it unseen; now that op's `expectation` anomaly, its value ignored, and the `lost` found."""
    run = healthy()
    run.intent("gone", 2.5, land=False)
    run.invoke("odd", 3.5)
    seq = run.message("odd")
    ok = {"t": 3.6, "process": "c1", "type": "ok", "f": "intent", "cid": "odd", "agent": "agent-1",
          "outcome": "committed", "stream_seq": seq, "quorum_ms": 5.0}  # fmt: skip
    run.history.append({**ok, field: value})
    run.row("odd", stream_seq=seq)
    v = check(run, tmp_path)
    assert_only(v, ("lost", "gone"), ("expectation", "odd"))
    (detail,) = details(v, "expectation")
    assert detail.startswith(f"{BROKE} {what}")
    if field == "quorum_ms":  # ignored: only the other ops' quorum_ms are judged
        assert v["checks"]["latency"]["intent_values"] == 6


def test_two_broken_fields_of_one_answer_are_one_anomaly(tmp_path: Path) -> None:
    run = healthy()
    run.invoke("odd", 3.5)
    run.history.append({"t": 3.6, "process": "c1", "type": "ok", "f": "intent", "cid": "odd",
                        "outcome": "pending-commit", "stream_seq": "1", "quorum_ms": "2"})  # fmt: skip
    v = check(run, tmp_path)
    assert found(v) == [("expectation", "odd"), ("lost", "odd")]  # accepted, and in no stream
    (detail,) = details(v, "expectation")
    assert "stream_seq: got a string" in detail and "; quorum_ms: got a string" in detail


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ('{"process": "c1", "type": "invoke", "f": "intent", "cid": "z"}', "t: missing"),
        ('{"t": 9.0, "process": "c1", "type": "invoke", "f": "intent", "stream_seq": "1"}', "without a cid"),
        ('{"t": 9.0, "process": "c1", "type": "ok", "cid": 5, "stream_seq": "1"}', "cid: got int"),
        (
            '{"t": 9.0, "process": "c1", "type": "ok", "cid": "ok-0", "outcome": 5, "stream_seq": "1"}',
            "outcome",
        ),
        ('{"t": 9.0, "process": "c1", "type": ok}', "not JSON"),
        ('{"t": "9", "process": "c1", "type": "invoke", "cid": "z", "quorum_ms": "1"}', "t: got str"),
    ],
)
def test_structural_damage_stays_a_malformed_history(tmp_path: Path, line: str, what: str) -> None:
    path, number = _appended(tmp_path, line)
    _unjudgeable(path, number, what)


@pytest.mark.parametrize("name", [store.HISTORY, store.STREAM, store.STORE, store.SAMPLES])
def test_a_line_nested_too_deeply_to_decode_names_its_file_and_line(tmp_path: Path, name: str) -> None:
    path = healthy().write(tmp_path)
    deep = "[" * 5000 + "]" * 5000
    line = {
        store.HISTORY: '{"t": 9.0, "process": "nemesis", "type": "info", "f": "x", "target": %s}',
        store.STREAM: '{"seq": 99, "cid": "ok-0", "key": "k", "value": %s}',
        store.STORE: '{"cid": "ok-0", "key": "k", "value": %s, "stream_seq": 1}',
        store.SAMPLES: '{"t": 9.0, "source": "agent-1", "replicas_lagging": %s}',
    }[name] % deep
    number = append_line(path, name, line)
    v = judge(path)
    assert v["valid"] == "unknown"
    errors = [c["error"] for c in v["checks"].values() if "error" in c]
    assert errors and all(f"{name}:{number}: nested too deeply" in e for e in errors), errors


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"cid": "odd", "outcome": "committed", "stream_seq": "12", "quorum_ms": 3}'),
        (200, b'{"cid": "odd", "outcome": "committed", "stream_seq": 12, "quorum_ms": "3"}'),
        (202, b'{"cid": "odd", "outcome": "pending-commit", "quorum_ms": true}'),
        (200, b"[1, 2]"),
        (204, b""),
    ],
)
def test_the_loads_own_record_of_a_broken_answer_is_judged_beside_a_lost_intent(
    tmp_path: Path, status: int, body: bytes
) -> None:
    """What the load writes for such an answer (harness/load/ops.completion) goes through the judge."""
    run = healthy()
    run.intent("gone", 2.5, land=False)
    run.invoke("odd", 3.5)
    run.history.append(
        {"t": 3.6, **completion("c1", Intent(0, 3.5, "odd", "agent-1", "k-odd", 1), status, body, None)}
    )
    v = check(run, tmp_path)
    assert_only(v, ("lost", "gone"), ("expectation", "odd"))
    assert details(v, "expectation")[0].startswith(f"{BROKE} ")


def test_a_number_past_float64_in_the_store_names_its_line(tmp_path: Path) -> None:
    run = healthy()
    run.intent("x", 2.5)
    path = run.write(tmp_path)
    rows = (path / store.STORE).read_text().splitlines()
    at = next(i for i, r in enumerate(rows) if '"x"' in r)
    row = json.loads(rows[at])
    rows[at] = (
        f'{{"cid": "x", "key": {json.dumps(row["key"])}, "value": 1e999, "stream_seq": {row["stream_seq"]}}}'
    )
    (path / store.STORE).write_text("\n".join(rows) + "\n")
    v = judge(path)
    assert v["valid"] == "unknown"
    error = v["checks"]["reconciliation"]["error"]
    assert f"store.jsonl:{at + 1}:" in error and "64-bit float" in error
