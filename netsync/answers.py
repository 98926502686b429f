"""The agent's answers by cid, kept across a restart (docs/contract.md, "Agent HTTP API"): a
repeated POST gets the answer it got before, never a second intent, also after the agent was
killed and started again.

The last `limit` answers are held in memory and in two files of JSON lines beside the journal
(`answers.log`, and `answers.old` once it rotated): when the current file holds `limit` lines it
becomes the old one and a new one starts, so the disk holds at most twice `limit` lines and no
rewrite ever copies them. Lines are written without fsync: they survive the process being killed
(they are in the kernel's page cache), not a power loss of the host.

As careful as the journal (netsync/buffer.py) with what a write can leave: a line is written whole or
not at all (a short write is continued, a failed one, ENOSPC say, is cut off again), and on start a
torn last line is dropped and cut off the file; any other line that cannot be read stops the start
with AnswersCorrupt naming the file and line.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from io import FileIO
from pathlib import Path
from typing import Any

from netsync.untrusted import loads

CURRENT = "answers.log"
OLD = "answers.old"


class AnswersCorrupt(Exception):
    """A line that is not the last of its file cannot be read; the message names file and line."""


def _decode(raw: bytes) -> tuple[str, int, dict[str, Any]]:
    """One line -> (cid, status, body); ValueError saying why when it is not an answer."""
    rec = loads(raw)  # bytes not UTF-8, not JSON, nested too deeply: all ValueErrors
    if not isinstance(rec, dict) or not {"cid", "status", "body"} <= rec.keys():
        raise ValueError("not an object with cid, status and body")
    cid, status, body = rec["cid"], rec["status"], rec["body"]
    if not isinstance(cid, str) or type(status) is not int or not isinstance(body, dict):
        raise ValueError("cid must be a string, status an integer, body an object")
    return cid, status, body


class AnswerLog:
    """{cid: (status, body)}, the most recent `limit` of them, in the order they were given. In memory
    each is kept as compact JSON bytes without its cid and decoded when asked for: about 270 bytes an
    answer with its key, where a dict took about 700 (a soak's agents filled 50,000 with 35 MiB)."""

    def __init__(self, directory: str | Path, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self._load(self._dir / OLD)
        self._lines, self._size = self._load(self._dir / CURRENT)  # whole lines in the current file
        self._file = FileIO(self._dir / CURRENT, "a")
        self._torn = self._file.tell() != self._size  # a torn tail, cut off before the next line
        if self._torn:
            self._mend()

    def _load(self, path: Path) -> tuple[int, int]:
        """Read `path` into memory; (its whole lines, their length in bytes with their newlines)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0, 0
        lines = data.split(b"\n")
        # Only a line ending in a newline is whole: one read whole but unended would have the next
        # line written onto its end, and that pair could never be read again.
        torn = lines.pop()
        if not lines and not torn:
            return 0, 0
        whole = len(data) - len(torn)
        for number, raw in enumerate(lines, start=1):
            try:
                cid, status, body = _decode(raw)
            except ValueError as e:
                if number == len(lines) and not torn:
                    # Torn by a crash in the middle of its write: that answer was never sent.
                    return number - 1, whole - len(raw) - 1
                raise AnswersCorrupt(f"{path}:{number}: {e}") from None
            self._keep(cid, status, body)
        return len(lines), whole

    def _keep(self, cid: str, status: int, body: dict[str, Any]) -> None:
        rest = {k: v for k, v in body.items() if k != "cid"}
        self._answers[cid] = json.dumps([status, rest, "cid" in body], separators=(",", ":")).encode()
        self._answers.move_to_end(cid)
        if len(self._answers) > self.limit:
            self._answers.popitem(last=False)

    def get(self, cid: str) -> tuple[int, dict[str, Any]] | None:
        kept = self._answers.get(cid)
        if kept is None:
            return None
        status, rest, with_cid = json.loads(kept)
        return status, ({"cid": cid, **rest} if with_cid else rest)

    def __contains__(self, cid: str) -> bool:
        return cid in self._answers

    def __len__(self) -> int:
        return len(self._answers)

    def put(self, cid: str, status: int, body: dict[str, Any]) -> None:
        """Remember `cid`'s answer, on disk before this returns (one write, no fsync)."""
        line = json.dumps({"cid": cid, "status": status, "body": body}, separators=(",", ":")).encode()
        if self._torn:
            self._mend()
        if self._lines >= self.limit:
            self._rotate()
        self._append(line + b"\n")
        self._lines += 1
        self._keep(cid, status, body)

    def _append(self, data: bytes) -> None:
        """Write `data` whole, or leave the file as it was and raise."""
        try:
            view = memoryview(data)
            while view:  # a short write (a disk filling up) is continued, not taken for the whole
                view = view[self._file.write(view) :]
        except BaseException:
            self._torn = True
            try:
                self._mend()
            except OSError:
                pass  # tried again before the next line: it must never follow a torn one
            raise
        self._size += len(data)

    def _mend(self) -> None:
        """Cut the current file back to its whole lines."""
        os.ftruncate(self._file.fileno(), self._size)
        self._torn = False

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self._dir / CURRENT, self._dir / OLD)
        self._file = FileIO(self._dir / CURRENT, "a")
        self._lines = self._size = 0

    def close(self) -> None:
        self._file.close()
