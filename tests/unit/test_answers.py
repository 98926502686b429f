"""netsync.answers: the agent's answers kept across a restart, bounded on disk and in memory."""

from __future__ import annotations

import pytest

from netsync.answers import CURRENT, OLD, AnswerLog, AnswersCorrupt


def test_answers_come_back_after_reopening(tmp_path) -> None:
    log = AnswerLog(tmp_path, limit=10)
    log.put("a", 409, {"cid": "a", "outcome": "aborted", "reason": "no quorum"})
    log.put("b", 202, {"cid": "b", "outcome": "pending-commit", "quorum_ms": 3.5})
    log.put("b", 200, {"cid": "b", "outcome": "committed", "stream_seq": 7, "quorum_ms": 3.5})
    log.close()  # what a SIGKILL leaves is the same: every line was written before put returned
    again = AnswerLog(tmp_path, limit=10)
    assert again.get("a") == (409, {"cid": "a", "outcome": "aborted", "reason": "no quorum"})
    assert again.get("b") == (200, {"cid": "b", "outcome": "committed", "stream_seq": 7, "quorum_ms": 3.5})
    assert again.get("c") is None and len(again) == 2


def test_the_disk_holds_at_most_twice_the_limit_and_the_latest_answers_survive(tmp_path) -> None:
    log = AnswerLog(tmp_path, limit=5)
    for i in range(23):
        log.put(f"c{i}", 200, {"cid": f"c{i}", "outcome": "committed", "stream_seq": i})
    log.close()
    lines = sum(len((tmp_path / name).read_bytes().splitlines()) for name in (CURRENT, OLD))
    assert lines <= 10
    again = AnswerLog(tmp_path, limit=5)
    assert len(again) == 5
    assert [again.get(f"c{i}")[1]["stream_seq"] for i in range(18, 23)] == list(range(18, 23))  # type: ignore[index]
    assert again.get("c17") is None


def test_a_torn_last_line_is_dropped_and_writing_goes_on(tmp_path) -> None:
    log = AnswerLog(tmp_path, limit=10)
    log.put("a", 200, {"cid": "a", "outcome": "committed", "stream_seq": 1})
    log.close()
    with open(tmp_path / CURRENT, "ab") as f:
        f.write(b'{"cid": "b", "sta')  # killed in the middle of a write
    log = AnswerLog(tmp_path, limit=10)
    assert log.get("b") is None
    log.put("c", 200, {"cid": "c", "outcome": "committed", "stream_seq": 2})
    log.close()
    again = AnswerLog(tmp_path, limit=10)
    assert again.get("c") == (200, {"cid": "c", "outcome": "committed", "stream_seq": 2})


def test_a_bad_line_in_the_middle_names_file_and_line(tmp_path) -> None:
    (tmp_path / CURRENT).write_bytes(
        b'{"cid": "a", "status": 200, "body": {}}\n{"cid": 5, "status": 200, "body": {}}\n'
        b'{"cid": "c", "status": 200, "body": {}}\n'
    )
    with pytest.raises(AnswersCorrupt, match=rf"{CURRENT}:2: .*cid must be a string"):
        AnswerLog(tmp_path, limit=10)
