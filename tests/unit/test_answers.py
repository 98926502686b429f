"""netsync.answers: the agent's answers kept across a restart, bounded on disk and in memory."""

from __future__ import annotations

import errno
import os
from io import FileIO

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


# -- what a crash or a full disk can leave (issue 27): a short write never costs the next start --


def answer(cid: str, seq: int) -> tuple[int, dict]:
    return 200, {"cid": cid, "outcome": "committed", "stream_seq": seq}


class FillingDisk(FileIO):
    """The answers file on a disk with `room` bytes left, whose writes go `step` bytes at a time: a write
    past the room writes what fits and returns short; the next one fails with ENOSPC."""

    room: int | None = None
    step = 1 << 20

    def write(self, data) -> int:  # type: ignore[override]
        n = min(len(data), self.step)
        if self.room is not None:
            if self.room == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = min(n, self.room)
            self.room -= n
        return super().write(bytes(data[:n]))


def on_filling_disk(log: AnswerLog, path) -> FillingDisk:
    log._file.close()
    log._file = disk = FillingDisk(path / CURRENT, "a")
    return disk


@pytest.mark.parametrize(
    "tail",
    [
        b'{"cid": "b", "sta',  # killed in the middle of a write
        b'{"cid":"b","status":200,"body":{}}',  # killed before the newline: whole JSON, yet torn
        b"\0" * 300,  # a power loss: the file's new length reached the disk, its bytes did not
        b'{"cid": "b", "key": "\xe9\xff',  # cut inside a character
    ],
)
def test_a_torn_tail_of_any_shape_is_dropped_and_the_next_starts_read_every_answer(tmp_path, tail) -> None:
    log = AnswerLog(tmp_path, limit=10)
    log.put("a", *answer("a", 1))
    log.close()
    with open(tmp_path / CURRENT, "ab") as f:
        f.write(tail)
    log = AnswerLog(tmp_path, limit=10)
    assert (log.get("a"), log.get("b")) == (answer("a", 1), None)
    log.put("c", *answer("c", 2))
    log.close()
    for _ in range(2):  # the start after the one that dropped the tail is fine too
        again = AnswerLog(tmp_path, limit=10)
        assert (again.get("a"), again.get("c"), len(again)) == (answer("a", 1), answer("c", 2), 2)
        again.close()


def test_a_write_cut_short_by_a_full_disk_leaves_no_partial_line(tmp_path) -> None:
    log = AnswerLog(tmp_path, limit=10)
    log.put("a", *answer("a", 1))
    disk = on_filling_disk(log, tmp_path)
    disk.room = 20  # the next line fits only in part: written short, then ENOSPC
    with pytest.raises(OSError, match="No space"):
        log.put("b", *answer("b", 2))
    assert log.get("b") is None  # not on disk, so not answered from memory either
    disk.room = None  # space again
    log.put("c", *answer("c", 3))
    log.close()
    again = AnswerLog(tmp_path, limit=10)
    assert (again.get("a"), again.get("b"), again.get("c")) == (answer("a", 1), None, answer("c", 3))


def test_short_writes_are_continued_to_the_whole_line(tmp_path) -> None:
    log = AnswerLog(tmp_path, limit=10)
    on_filling_disk(log, tmp_path).step = 7  # each write takes 7 bytes and says so
    for i in range(3):
        log.put(f"c{i}", *answer(f"c{i}", i))
    log.close()
    again = AnswerLog(tmp_path, limit=10)
    assert [again.get(f"c{i}") for i in range(3)] == [answer(f"c{i}", i) for i in range(3)]


def test_a_failed_rotation_changes_nothing_and_the_next_answer_rotates(tmp_path, monkeypatch) -> None:
    log = AnswerLog(tmp_path, limit=2)
    log.put("a", *answer("a", 1))
    log.put("b", *answer("b", 2))
    real = os.replace

    def refused(*args) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(OSError):
        log.put("c", *answer("c", 3))
    monkeypatch.setattr(os, "replace", real)
    log.put("d", *answer("d", 4))
    log.close()
    again = AnswerLog(tmp_path, limit=2)
    assert (again.get("b"), again.get("d")) == (answer("b", 2), answer("d", 4))


@pytest.mark.parametrize(
    ("middle", "says"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'{"cid": "\xe9", "status": 200, "body": {}}', "utf-8"),
        (b"[1, 2]", "cid, status and body"),
        (b'{"cid": "b", "status": true, "body": {}}', "status an integer"),
        (b"\0" * 40, "Expecting value"),
    ],
)
def test_damage_before_the_last_line_stops_the_start_naming_file_and_line(tmp_path, middle, says) -> None:
    (tmp_path / OLD).write_bytes(
        b'{"cid": "a", "status": 200, "body": {}}\n' + middle + b'\n{"cid": "c", "status": 200, "body": {}}\n'
    )
    with pytest.raises(AnswersCorrupt, match=rf"{OLD}:2: .*{says}"):
        AnswerLog(tmp_path, limit=10)
