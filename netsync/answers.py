"""The agent's answers by cid, kept across a restart (docs/contract.md, "Agent HTTP API"): a
repeated POST gets the answer it got before, never a second intent, also after the agent was
killed and started again.

The last `limit` answers are held in memory and in two files of JSON lines beside the journal
(`answers.log`, and `answers.old` once it rotated): when the current file holds `limit` lines it
becomes the old one and a new one starts, so the disk holds at most twice `limit` lines and no
rewrite ever copies them. Lines are written without fsync: they survive the process being killed
(they are in the kernel's page cache), not a power loss of the host.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from io import FileIO
from pathlib import Path
from typing import Any

CURRENT = "answers.log"
OLD = "answers.old"


class AnswersCorrupt(Exception):
    """A line that is not the last of its file cannot be read; the message names file and line."""


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
        self._lines, whole = self._load(self._dir / CURRENT)  # lines in the current file
        self._file = FileIO(self._dir / CURRENT, "a")
        if self._file.tell() > whole:
            os.ftruncate(self._file.fileno(), whole)  # a torn last line must not become a middle one

    def _load(self, path: Path) -> tuple[int, int]:
        """Read `path` into memory; (its whole lines, their length in bytes)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0, 0
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        whole = len(data)
        for number, raw in enumerate(lines, start=1):
            try:
                rec = json.loads(raw)
                cid, status, body = rec["cid"], rec["status"], rec["body"]
                if not isinstance(cid, str) or type(status) is not int or not isinstance(body, dict):
                    raise ValueError("cid must be a string, status an integer, body an object")
            except (ValueError, KeyError, TypeError) as e:
                if number == len(lines):
                    # Torn by a crash in the middle of its write: that answer was never sent.
                    return number - 1, whole - len(raw) - data.endswith(b"\n")
                raise AnswersCorrupt(f"{path}:{number}: {type(e).__name__}: {e}") from None
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
        if self._lines >= self.limit:
            self._rotate()
        self._file.write(line + b"\n")
        self._lines += 1
        self._keep(cid, status, body)

    def _rotate(self) -> None:
        self._file.close()
        os.replace(self._dir / CURRENT, self._dir / OLD)
        self._file = FileIO(self._dir / CURRENT, "a")
        self._lines = 0

    def close(self) -> None:
        self._file.close()
