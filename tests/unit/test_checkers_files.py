"""What a malformed or missing file, or a crashing checker, makes of the verdict (it names the file and
line, or says which check could not judge), and the scenario's waivers of anomalies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import store
from harness.checkers import CHECKERS, exit_code, judge, leak
from harness.checkers.run import Run
from harness.store import RunDirError
from tests.unit.judging import assert_only, check, found, healthy
from tests.unit.rundirs import append_line

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
    assert v["checks"]["leak"]["error"].startswith("ZeroDivisionError: boom (test_checkers_files.py:")
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
