"""The agent's pending-commit buffer: decisions awaiting the orchestrator's `committed`, bounded
and journaled (JSON lines, fsynced) so that every 202 the agent sent survives a crash."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, fields, replace
from io import FileIO
from pathlib import Path
from typing import Any

from netsync.untrusted import loads

JOURNAL_NAME = "pending-commit.journal"
COMPACT_AFTER = 4096
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# The age of a replay no clock can vouch for: past any duplicate window, so the orchestrator looks it
# up in the whole stream (docs/contract.md, "Exactly once").
UNTRUSTED_AGE_S = 10 * 365 * 86400.0


class BufferFull(Exception):
    """The buffer holds `cap` entries: the agent answers 429 rather than dropping anything."""


class JournalCorrupt(Exception):
    """A journal line that is not the last one cannot be read; the message names file and line."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Pending:
    """One decision frame's worth of data (docs/contract.md, "Commitment"); times are Unix seconds."""

    cid: str
    key: str
    value: int
    proposer: str
    decided_at: float
    first_attempt_at: float
    attempt: int
    # Not sent: what ages a replay across a restart. `time.monotonic()` at the first attempt and the boot
    # it was read in; None in a journal written before they were kept.
    first_attempt_mono: float | None = None
    boot: str | None = None

    def __post_init__(self) -> None:
        # Checked here, not only on replay: a bad entry written today would make tomorrow's start fail.
        for name in ("cid", "key", "proposer"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, not {getattr(self, name)!r}")
        for name in ("value", "attempt"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{name} must be an integer, not {v!r}")
        for name in ("decided_at", "first_attempt_at"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, not {v!r}")
        mono = self.first_attempt_mono
        if mono is not None and (
            not isinstance(mono, int | float) or isinstance(mono, bool) or not math.isfinite(mono)
        ):
            raise ValueError(f"first_attempt_mono must be a finite number or null, not {mono!r}")
        if self.boot is not None and not isinstance(self.boot, str):
            raise ValueError(f"boot must be a string or null, not {self.boot!r}")


_FIELDS = tuple(f.name for f in fields(Pending))
_REQUIRED = tuple(f.name for f in fields(Pending) if f.default is MISSING)


def this_boot() -> str:
    """The kernel's id of this boot: the monotonic clock counts from the boot, so a reading taken in an
    earlier process (a restarted agent, a restarted container on the same host) is comparable with one
    taken now exactly when both were taken in the same boot. Without it, an id of this process alone."""
    try:
        return BOOT_ID.read_text().strip() or f"process-{os.getpid()}-{time.time_ns()}"
    except OSError:
        return f"process-{os.getpid()}-{time.time_ns()}"


def first_attempt_age(entry: Pending, boot: str) -> float:
    """Seconds since `entry`'s first attempt (`first_attempt_age_s`), never fewer than it really is
    (docs/contract.md, "Exactly once"): a replay judged younger than it is can fall inside the duplicate
    window after the window let its first publish go, and be stored twice.

    The wall clock alone can be stepped (NTP, an operator, a clock fault): stepped back between the first
    attempt and a replay, it made the replay look younger by the step, also across a restart of the
    agent, where the journal's wall-clock time was all that was left. The monotonic clock cannot step, and
    counts from the boot, so it measures the age whenever the first attempt was read in this boot, across
    restarts of the process. It stops while the host is suspended; the wall clock does not, so the larger
    of the two is taken: a step forward only makes a replay look older, which costs a lookup, never a
    second store. A first attempt read in another boot, not read at all (a journal written before this),
    or read ahead of the monotonic clock now (another clock namespace), has no clock that can vouch for
    its age: it counts as older than any window (UNTRUSTED_AGE_S), so the replay is looked up first."""
    now = time.monotonic()
    if entry.first_attempt_mono is None or entry.boot != boot or entry.first_attempt_mono > now:
        return UNTRUSTED_AGE_S
    return max(now - entry.first_attempt_mono, time.time() - entry.first_attempt_at)


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _add_line(entry: Pending) -> bytes:
    return _line({"op": "add", **asdict(entry)})


def _decode(raw: bytes) -> dict[str, Any]:
    """One journal line -> its record; ValueError (with the reason) when it is not a valid record."""
    rec = loads(raw.decode())  # not UTF-8, not JSON, nested too deeply: ValueErrors all
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    op = rec.get("op")
    if op == "add":
        missing = [f for f in _REQUIRED if f not in rec]
        if missing:
            raise ValueError(f"add without {', '.join(missing)}")
        rec["entry"] = Pending(**{f: rec[f] for f in _FIELDS if f in rec})
    elif op in ("done", "attempt"):
        number = "seq" if op == "done" else "attempt"
        if not isinstance(rec.get("cid"), str) or type(rec.get(number)) is not int:
            raise ValueError(f"{op} needs a string cid and an integer {number}")
    else:
        raise ValueError(f"unknown op {op!r}")
    return rec


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingCommitBuffer:
    """Thread-safe. The writing methods block on disk (call them through `trio.to_thread.run_sync`);
    the reading ones never wait for an fsync, so the event loop may call them directly.

    The journal holds `add` lines (fsynced before `append` returns), `done` lines, and `attempt`
    lines; it is rewritten with only the pending entries on open, when the buffer empties, and
    when more than `compact_after` lines are obsolete.
    """

    def __init__(
        self, journal_dir: str | Path, cap: int, *, compact_after: int = COMPACT_AFTER, fsync: bool = True
    ) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, not {cap}")
        self._cap = cap
        self._compact_after = compact_after
        self._fsync = fsync  # False only for buggify journal-no-fsync: appends reach the page cache only
        self._dir = Path(journal_dir)
        if not self._dir.is_dir():
            self._dir.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self._dir.parent)
        self.path = self._dir / JOURNAL_NAME
        # Two locks so that readers never wait behind an fsync: `_io` serializes every change
        # (journal write, then state), `_lock` guards only the brief in-memory update and the reads.
        self._io = threading.Lock()
        self._lock = threading.Lock()
        # A dict keeps insertion order, which is decision order; replacing a value keeps its place.
        self._pending: dict[str, Pending] = {}
        self._file: FileIO | None = None
        self._size = 0
        self._obsolete = 0
        self._replay()
        # Rewriting at once drops a torn tail (later appends must not follow it, or it would become
        # a corrupt middle line) and creates the file, with its directory entry fsynced, if missing.
        self._rewrite()

    # -- reading ---------------------------------------------------------------------------------

    @property
    def cap(self) -> int:
        return self._cap

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def head(self) -> Pending | None:
        with self._lock:
            return next(iter(self._pending.values()), None)

    def entries(self) -> list[Pending]:
        with self._lock:
            return list(self._pending.values())

    def contains(self, cid: str) -> bool:
        with self._lock:
            return cid in self._pending

    # -- writing ---------------------------------------------------------------------------------

    def append(self, entry: Pending) -> None:
        """Journal `entry` behind the others; durable when this returns."""
        self.append_many([entry])

    def append_many(self, entries: Iterable[Pending]) -> None:
        """Group commit: all entries or none (BufferFull, ValueError), with one fsync for all."""
        batch = list(entries)
        if not batch:
            return
        with self._io:  # only `_io` holders change `_pending`, so reading it here needs no `_lock`
            cids = [e.cid for e in batch]
            taken = [c for c in cids if c in self._pending]
            if taken or len(set(cids)) != len(cids):
                raise ValueError(f"cid already pending: {taken[0] if taken else 'repeated in the batch'}")
            if len(self._pending) + len(batch) > self._cap:
                raise BufferFull(f"{len(self._pending)} of {self._cap} pending, {len(batch)} more do not fit")
            self._write(b"".join(_add_line(e) for e in batch), sync=True)
            with self._lock:  # visible (as head, in len) only once durable
                for e in batch:
                    self._pending[e.cid] = e

    def complete(self, cid: str, seq: int) -> None:
        """The orchestrator answered `committed` with `seq`: the entry leaves the buffer.

        KeyError when `cid` is not pending. If only the compaction that follows fails (OSError),
        the entry is already gone and the journal is still valid.
        """
        with self._io:
            if cid not in self._pending:
                raise KeyError(cid)
            if type(seq) is not int:  # replay would reject the line
                raise ValueError(f"seq must be an integer, not {seq!r}")
            # Not fsynced: a completion lost in a crash only makes the entry replay, and the
            # orchestrator answers that replay with the seq already stored (Nats-Msg-Id inside the
            # duplicate window, its stream lookup beyond it) instead of publishing twice.
            self._write(_line({"op": "done", "cid": cid, "seq": seq}), sync=False)
            with self._lock:
                del self._pending[cid]
            self._obsolete += 2  # the add and the done
            if not self._pending or self._obsolete > self._compact_after:
                self._rewrite()

    def bump_attempt(self, cid: str) -> Pending:
        """Count one more commit attempt for `cid` (KeyError if not pending); returns the new entry."""
        with self._io:
            bumped = replace(self._pending[cid], attempt=self._pending[cid].attempt + 1)
            # Persisted and fsynced (one fsync per attempt, next to a round trip to the orchestrator):
            # after a restart, a replay must not reuse an attempt number already sent, since the
            # orchestrator's stream lookup past the duplicate window only happens for attempt > 1.
            self._write(_line({"op": "attempt", "cid": cid, "attempt": bumped.attempt}), sync=True)
            with self._lock:
                self._pending[cid] = bumped
            self._obsolete += 1
            if self._obsolete > self._compact_after:
                self._rewrite()
            return bumped

    def close(self) -> None:
        with self._io:
            if self._file is not None:
                self._file.close()
                self._file = None

    # -- journal ---------------------------------------------------------------------------------

    def _replay(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            try:
                rec = _decode(raw)
            except (ValueError, TypeError) as e:
                if number == len(lines):
                    # A crash in the middle of a write; that write was never fsynced, so nothing in
                    # it was ever acknowledged.
                    break
                raise JournalCorrupt(self.path, number, str(e)) from None
            cid = rec["cid"]
            if rec["op"] == "add":
                if cid in self._pending:
                    raise JournalCorrupt(self.path, number, f"cid {cid!r} added twice")
                self._pending[cid] = rec["entry"]
            elif cid not in self._pending:
                raise JournalCorrupt(self.path, number, f"{rec['op']} for cid {cid!r}, which is not pending")
            elif rec["op"] == "done":
                del self._pending[cid]
            else:
                self._pending[cid] = replace(self._pending[cid], attempt=rec["attempt"])
        # More entries than `cap` (the cap was lowered across a restart) are all kept: each was
        # answered 202; appends fail with BufferFull until the buffer drains below the cap.

    def _rewrite(self) -> None:
        """Atomically replace the journal by one holding only the pending entries."""
        content = b"".join(_add_line(e) for e in self._pending.values())
        tmp = self.path.with_name(JOURNAL_NAME + ".tmp")
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        # Reopen before anything else can fail: appends must never go to the replaced file.
        if self._file is not None:
            self._file.close()
        self._file = FileIO(self.path, "a")
        self._size = len(content)
        self._obsolete = 0
        _fsync_dir(self._dir)

    def _write(self, data: bytes, *, sync: bool) -> None:
        if self._file is None:
            raise ValueError("the buffer is closed, or its journal failed a write; reopen it")
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view) :]
            if sync and self._fsync:
                os.fsync(self._file.fileno())
        except BaseException:
            # Leave no partial line: appends after it would turn it into a corrupt middle line.
            try:
                os.ftruncate(self._file.fileno(), self._size)
            except OSError:
                self._file.close()
                self._file = None
            raise
        self._size += len(data)
