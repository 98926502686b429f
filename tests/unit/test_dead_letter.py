"""A dead-lettered intent (docs/contract.md, "Dead letters") as the reconciliation judges it: still an
anomaly, never a silent pass, and its detail says the projector dead-lettered it and why, read from
the projector's log beside the run's files."""

from __future__ import annotations

import json
from pathlib import Path

from harness import store
from harness.checkers import judge
from tests.unit.judging import assert_only, check, details, healthy
from tests.unit.rundirs import append_line


def dead_letter_line(cid: str | None, seq: int, cause: str = "refused", reason: str = "no") -> str:
    line = {"t": 1.7e9, "level": "error", "node": "projector", "msg": "dead-lettered", "seq": seq}
    if cid is not None:
        line["cid"] = cid
    return json.dumps({**line, "cause": cause, "reason": reason, "attempts": 8, "body": "{}"})


def with_logs(path: Path, **logs: list[str]) -> Path:
    (path / store.LOGS).mkdir(exist_ok=True)
    for node, lines in logs.items():
        (path / store.LOGS / f"{node}.log").write_text("".join(f"{line}\n" for line in lines))
    return path


def test_a_dead_lettered_intent_is_unprojected_and_says_why(tmp_path: Path) -> None:
    run = healthy()
    run.intent("x", 2.5, project=False)
    path = run.write(tmp_path)
    seq = next(m["seq"] for m in run.stream if m["cid"] == "x")
    reason = "SurrealDB refused it 8 times: Found 5000 for field `value`"
    noise = json.dumps({"t": 1.0, "level": "info", "node": "projector", "msg": "projected", "cid": "x"})
    with_logs(path, projector=["not json", noise, dead_letter_line("x", seq, reason=reason)])
    v = judge(path)
    assert_only(v, ("unprojected", "x"))
    (detail,) = details(v, "unprojected")
    assert "absent from the store" in detail
    assert f"dead-lettered by the projector (refused, seq {seq}): {reason}" in detail


def test_without_a_log_the_detail_is_the_plain_one(tmp_path: Path) -> None:
    run = healthy()
    run.intent("x", 2.5, project=False)
    v = check(run, tmp_path)
    assert_only(v, ("unprojected", "x"))
    assert "dead-lettered" not in details(v, "unprojected")[0]


def test_a_lost_intent_names_a_dead_letter_too(tmp_path: Path) -> None:
    # A log line for a cid that is not in the stream at all: still `lost`, with the projector's word.
    run = healthy()
    run.invoke("y", 2.5).ok("y", 2.6, outcome="pending-commit")
    path = with_logs(run.write(tmp_path), **{"projector-1": [dead_letter_line("y", 99, "malformed", "bad")]})
    v = judge(path)
    assert_only(v, ("lost", "y"))
    assert "dead-lettered by the projector (malformed, seq 99): bad" in details(v, "lost")[0]


def test_dead_letters_of_other_cids_change_nothing(tmp_path: Path) -> None:
    path = with_logs(
        healthy().write(tmp_path), projector=[dead_letter_line(None, 3), dead_letter_line("z", 4)]
    )
    append_line(path, store.LOGS + "/agent-1.log", dead_letter_line("ok-1", 5))  # not the projector's
    assert_only(judge(path))


def test_a_log_of_one_endless_line_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    # The log is the SUT's text: a line of 3 MiB (past the readers' cap) or nested past the parser's
    # depth is skipped, and a dead letter after it still explains the anomaly.
    run = healthy()
    run.intent("x", 2.5, project=False)
    path = run.write(tmp_path)
    seq = next(m["seq"] for m in run.stream if m["cid"] == "x")
    endless = "dead-lettered " + "x" * (3 << 20)
    deep = '{"msg": "dead-lettered", "a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with_logs(path, projector=[endless, deep, dead_letter_line("x", seq, reason="after the noise")])
    v = judge(path)
    assert_only(v, ("unprojected", "x"))
    assert (
        "(refused, seq" in details(v, "unprojected")[0] and "after the noise" in details(v, "unprojected")[0]
    )
