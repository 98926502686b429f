"""The agent's pending-commit buffer on real files: what survives a crash, in which order, and
what is refused (docs/contract.md, "Pending-commit buffer")."""

import json
import os
import threading

import pytest

from netsync.buffer import JOURNAL_NAME, BufferFull, JournalCorrupt, Pending, PendingCommitBuffer


def entry(cid: str, value: int = 1, attempt: int = 1) -> Pending:
    return Pending(
        cid=cid,
        key=f"k-{cid}",
        value=value,
        proposer="agent-1",
        decided_at=1_700_000_000.25,
        first_attempt_at=1_700_000_000.5,
        attempt=attempt,
    )


def cids(buf: PendingCommitBuffer) -> list[str]:
    return [e.cid for e in buf.entries()]


def crash_and_reopen(buf: PendingCommitBuffer, cap: int = 8, **kw) -> PendingCommitBuffer:
    """Simulate a kill: the object is dropped without close(), and the directory is opened anew."""
    directory = buf.path.parent
    del buf
    return PendingCommitBuffer(directory, cap, **kw)


def test_entries_survive_a_crash_with_every_field_and_in_order(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path / "journal", cap=8)
    written = [entry("c3", value=-7), entry("c1", value=1_000_000), entry("c2", attempt=4)]
    for e in written:
        buf.append(e)

    again = crash_and_reopen(buf)

    assert again.entries() == written
    assert again.head() == written[0]
    assert len(again) == 3
    assert again.contains("c1") and not again.contains("c9")


def test_append_is_fsynced_before_it_returns(tmp_path, monkeypatch) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    synced: list[bytes] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        synced.append((tmp_path / JOURNAL_NAME).read_bytes())

    monkeypatch.setattr(os, "fsync", recording_fsync)
    buf.append(entry("a"))

    assert synced, "append returned without an fsync"
    assert b'"cid":"a"' in synced[-1], "the entry's line was not in the file when it was fsynced"


def test_an_empty_buffer_has_no_head(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=2)
    assert buf.head() is None and len(buf) == 0 and buf.entries() == []
    assert buf.cap == 2


def test_the_cap_is_enforced_and_a_refused_entry_leaves_no_trace(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=2)
    buf.append(entry("a"))
    buf.append(entry("b"))

    with pytest.raises(BufferFull):
        buf.append(entry("c"))

    assert cids(buf) == ["a", "b"]
    assert cids(crash_and_reopen(buf, cap=2)) == ["a", "b"]


def test_a_completion_frees_room_for_the_next_entry(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=1)
    buf.append(entry("a"))
    buf.complete("a", seq=10)
    buf.append(entry("b"))
    assert cids(buf) == ["b"]


def test_a_pending_cid_cannot_be_appended_twice(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append(entry("a"))

    with pytest.raises(ValueError, match="a"):
        buf.append(entry("a", value=2))

    assert buf.entries() == [entry("a")]


def test_append_many_is_all_or_nothing(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=4)
    buf.append(entry("a"))

    with pytest.raises(BufferFull):
        buf.append_many([entry("b"), entry("c"), entry("d"), entry("e")])
    with pytest.raises(ValueError):
        buf.append_many([entry("b"), entry("a")])
    with pytest.raises(ValueError):
        buf.append_many([entry("b"), entry("b")])
    assert cids(buf) == ["a"]

    buf.append_many([entry("b"), entry("c"), entry("d")])
    assert cids(crash_and_reopen(buf, cap=4)) == ["a", "b", "c", "d"]


def test_append_many_fsyncs_once_for_the_whole_batch(tmp_path, monkeypatch) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=300)
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))

    buf.append_many([entry(f"c{i}") for i in range(200)])

    assert len(calls) == 1
    assert len(buf) == 200


def test_complete_removes_the_entry_and_the_removal_survives_a_crash(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append_many([entry("a"), entry("b"), entry("c")])

    buf.complete("a", seq=41)
    buf.complete("c", seq=42)  # not the head: still allowed

    assert cids(buf) == ["b"]
    assert cids(crash_and_reopen(buf)) == ["b"]


def test_completing_an_unknown_cid_is_an_error(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    with pytest.raises(KeyError):
        buf.complete("nope", seq=1)


def test_attempts_are_counted_and_survive_a_crash(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append_many([entry("a", attempt=1), entry("b", attempt=1)])

    assert buf.bump_attempt("a").attempt == 2
    assert buf.bump_attempt("a").attempt == 3

    again = crash_and_reopen(buf)
    assert [(e.cid, e.attempt) for e in again.entries()] == [("a", 3), ("b", 1)]
    with pytest.raises(KeyError):
        again.bump_attempt("zzz")


def test_a_torn_last_line_is_ignored_and_earlier_entries_survive(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append_many([entry("a"), entry("b")])
    path = buf.path
    full = path.read_bytes()
    buf.append(entry("c"))
    torn = path.read_bytes()[: len(full) + 25]  # the kill landed in the middle of c's line
    path.write_bytes(torn)

    again = crash_and_reopen(buf)
    assert cids(again) == ["a", "b"]

    # The torn tail is gone, so what is appended next is not stuck behind garbage.
    again.append(entry("d"))
    assert cids(crash_and_reopen(again)) == ["a", "b", "d"]


def test_a_corrupt_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append_many([entry("a"), entry("b"), entry("c")])
    lines = buf.path.read_bytes().split(b"\n")
    lines[1] = lines[1][:20]
    buf.path.write_bytes(b"\n".join(lines))

    with pytest.raises(JournalCorrupt) as info:
        crash_and_reopen(buf)

    assert info.value.line == 2
    assert f"{tmp_path / JOURNAL_NAME}:2:" in str(info.value)


def test_a_well_formed_line_that_breaks_the_journal_rules_is_corrupt_too(tmp_path) -> None:
    (tmp_path / JOURNAL_NAME).write_text(
        json.dumps({"op": "done", "cid": "ghost", "seq": 3}) + "\n" + json.dumps({"op": "noop"}) + "\n"
    )
    with pytest.raises(JournalCorrupt, match=":1: done for cid 'ghost'"):
        PendingCommitBuffer(tmp_path, cap=8)


def test_compaction_keeps_exactly_the_pending_entries_and_shrinks_the_file(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=64, compact_after=20)
    buf.append_many([entry(f"c{i:02}") for i in range(12)])
    buf.bump_attempt("c11")
    size_before = buf.path.stat().st_size

    for i in range(9):
        buf.complete(f"c{i:02}", seq=i + 1)
    assert b'"op":"done"' in buf.path.read_bytes()  # 19 obsolete lines: not yet past the threshold
    buf.complete("c09", seq=10)  # 21: rewritten

    assert buf.path.stat().st_size < size_before
    records = [json.loads(line) for line in buf.path.read_text().splitlines()]
    assert [(r["op"], r["cid"], r["attempt"]) for r in records] == [("add", "c10", 1), ("add", "c11", 2)]
    assert [(e.cid, e.attempt) for e in crash_and_reopen(buf).entries()] == [("c10", 1), ("c11", 2)]


def test_the_journal_is_emptied_when_the_buffer_drains(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append_many([entry("a"), entry("b")])
    buf.complete("a", seq=1)
    buf.complete("b", seq=2)

    assert buf.path.stat().st_size == 0
    assert len(crash_and_reopen(buf)) == 0


def test_more_entries_than_a_lowered_cap_are_all_kept(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=4)
    buf.append_many([entry("a"), entry("b"), entry("c")])

    smaller = crash_and_reopen(buf, cap=2)

    assert cids(smaller) == ["a", "b", "c"]
    with pytest.raises(BufferFull):
        smaller.append(entry("d"))


def test_the_journal_directory_is_created(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path / "var" / "lib" / "netsync", cap=8)
    buf.append(entry("a"))
    assert (tmp_path / "var" / "lib" / "netsync" / JOURNAL_NAME).is_file()


def test_an_entry_that_could_not_be_replayed_is_refused_up_front(tmp_path) -> None:
    with pytest.raises(ValueError, match="value"):
        entry("a", value="12")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decided_at"):
        Pending("a", "k", 1, "agent-1", float("nan"), 0.0, 1)


def test_a_failed_fsync_appends_nothing(tmp_path, monkeypatch) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append(entry("a"))

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        buf.append(entry("b"))
    monkeypatch.undo()

    assert cids(buf) == ["a"]
    buf.append(entry("c"))
    assert cids(crash_and_reopen(buf)) == ["a", "c"]


def test_threads_appending_at_once_lose_nothing(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=1000)
    threads_n, per_thread = 8, 25

    def work(t: int) -> None:
        for i in range(per_thread):
            buf.append(entry(f"t{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert len(buf) == threads_n * per_thread
    again = crash_and_reopen(buf, cap=1000)
    assert len(again) == threads_n * per_thread
    for t in range(threads_n):  # each thread's own entries keep the order it appended them in
        mine = [c for c in cids(again) if c.startswith(f"t{t}-")]
        assert mine == [f"t{t}-{i}" for i in range(per_thread)]


def test_threads_racing_for_the_last_places_never_overfill_the_buffer(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=40)
    accepted: list[str] = []
    refused: list[str] = []

    def work(t: int) -> None:
        for i in range(20):
            cid = f"t{t}-{i}"
            try:
                buf.append(entry(cid))
                accepted.append(cid)
            except BufferFull:
                refused.append(cid)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert len(accepted) == 40 and len(refused) == 8 * 20 - 40
    assert sorted(cids(crash_and_reopen(buf, cap=40))) == sorted(accepted)


def test_threads_appending_the_same_cid_get_it_in_once(tmp_path) -> None:
    buf = PendingCommitBuffer(tmp_path, cap=8)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        try:
            buf.append(entry("same"))
            outcomes.append("appended")
        except ValueError:
            outcomes.append("refused")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert sorted(outcomes) == ["appended"] + ["refused"] * 7
    assert cids(crash_and_reopen(buf)) == ["same"]


def test_reading_does_not_wait_for_an_append_stuck_in_fsync(tmp_path, monkeypatch) -> None:
    # The agent's event loop reads the buffer (len, head, contains) directly while an append runs
    # in a worker thread; a slow disk must not stall it.
    buf = PendingCommitBuffer(tmp_path, cap=8)
    buf.append(entry("a"))
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    writer = threading.Thread(target=buf.append, args=(entry("b"),))
    writer.start()
    try:
        assert in_fsync.wait(10)
        seen: list[object] = []
        reader = threading.Thread(target=lambda: seen.extend([len(buf), buf.head(), buf.contains("b")]))
        reader.start()
        reader.join(2)
        assert not reader.is_alive(), "a read waited for the fsync"
        assert seen == [1, entry("a"), False]  # b is not visible before it is durable
    finally:
        release.set()
        writer.join(10)
    assert cids(buf) == ["a", "b"]


def test_a_deeply_nested_line_in_the_middle_is_corrupt_naming_its_line(tmp_path) -> None:
    # json.loads raised RecursionError, which no `except ValueError` caught: a traceback, no line.
    good = json.dumps({"op": "add", **entry("a").__dict__})
    (tmp_path / JOURNAL_NAME).write_text(
        good + "\n" + "[" * 100_000 + "\n" + good.replace('"a"', '"b"') + "\n"
    )
    with pytest.raises(JournalCorrupt, match=":2: nested too deeply"):
        PendingCommitBuffer(tmp_path, cap=8)


def test_a_journal_written_before_the_monotonic_reading_was_kept_still_opens(tmp_path) -> None:
    line = {"op": "add", **entry("a").__dict__}
    del line["first_attempt_mono"], line["boot"]
    (tmp_path / JOURNAL_NAME).write_text(json.dumps(line) + "\n")
    (again,) = PendingCommitBuffer(tmp_path, cap=8).entries()
    assert (again.cid, again.first_attempt_mono, again.boot) == ("a", None, None)  # aged as "old"


def test_the_monotonic_reading_and_the_boot_survive_a_crash_and_compaction(tmp_path) -> None:
    kept = Pending("a", "k", 1, "agent-1", 1.0, 1.0, 1, 1234.5, "boot-1")
    buf = PendingCommitBuffer(tmp_path, cap=8, compact_after=1)
    buf.append(kept)
    buf.bump_attempt("a")
    buf.bump_attempt("a")  # past compact_after: rewritten
    (again,) = crash_and_reopen(buf).entries()
    assert (again.first_attempt_mono, again.boot, again.attempt) == (1234.5, "boot-1", 3)


@pytest.mark.parametrize(
    ("field", "bad"), [("first_attempt_mono", "soon"), ("first_attempt_mono", True), ("boot", 7)]
)
def test_a_bad_monotonic_reading_or_boot_is_refused(tmp_path, field, bad) -> None:
    with pytest.raises(ValueError, match=field):
        Pending("a", "k", 1, "agent-1", 1.0, 1.0, 1, **{field: bad})
