"""History shards: each process that records operations (the harness, each Locust process) appends to a
file of its own, in time order; after the run they are merged into history.jsonl by `t`, as a stream
(one line per shard in memory), so a soak's history never has to fit in memory."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from harness.load.ops import Answered


class _Stamp(msgspec.Struct):
    t: float


_decode = msgspec.json.Decoder(_Stamp).decode  # reads `t` alone, skipping the rest of the line


@dataclass
class Merged:
    """What a merge wrote: `lines` in all, per shard, and every problem met (file:line: what)."""

    lines: int = 0
    per_shard: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _stamped(path: Path, merged: Merged) -> Iterator[tuple[float, bytes]]:
    """A shard's lines with their `t`. A torn last line (a process killed while writing it) ends the
    shard: everything before it is kept. A malformed line elsewhere is skipped. Both are reported."""
    kept = 0
    last = float("-inf")
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                t = _decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                if not line.endswith(b"\n"):
                    merged.problems.append(
                        f"{path.name}:{number}: torn last line ({len(line)} bytes: {e}); "
                        f"read up to line {number - 1}"
                    )
                    break
                merged.problems.append(f"{path.name}:{number}: not a history line ({e}); skipped")
                continue
            if t.t < last:
                merged.problems.append(
                    f"{path.name}:{number}: t={t.t} is before the line above it (t={last}); "
                    "history.jsonl is out of order there"
                )
            last = max(last, t.t)
            kept += 1
            yield t.t, line if line.endswith(b"\n") else line + b"\n"
    merged.per_shard[path.name] = kept


def merge_shards(shards: Sequence[Path], out: Path) -> Merged:
    """Merge `shards` (each in time order) into `out` by `t`. Ties keep the shards' order as given, then
    each shard's own: list the harness's shard first and its nemesis lines come before the clients' at
    the same `t`. Missing shards count as empty."""
    merged = Merged()
    present = [p for p in shards if p.exists()]
    for p in shards:
        if not p.exists():
            merged.per_shard[p.name] = 0
    with open(out, "wb") as f:
        for _, line in heapq.merge(*(_stamped(p, merged) for p in present), key=lambda s: s[0]):
            f.write(line)
            merged.lines += 1
    return merged


def _lines_backwards(path: Path, block: int = 1 << 16) -> Iterator[bytes]:
    """A file's lines, last first, read in blocks from its end (a line still being written comes first,
    whole or not: the caller skips what does not parse)."""
    with open(path, "rb") as f:
        pos = f.seek(0, 2)
        rest = b""
        while pos > 0:
            size = min(block, pos)
            pos -= size
            f.seek(pos)
            lines = (f.read(size) + rest).split(b"\n")
            rest = lines[0]
            yield from (line for line in reversed(lines[1:]) if line)
        if rest:
            yield rest


def recent_answers(path: Path, agent: str, n: int) -> list[tuple[float, Answered]]:
    """The last `n` answers `agent` gave for certain (ok or fail) in a shard, with their `t`, oldest
    first, read from the shard's end: a soak's shard is read only as far back as those answers'
    invokes (which carry key and value)."""
    if not path.exists():
        return []
    answers: dict[str, tuple[float, str]] = {}  # cid -> (t, outcome), newest first
    found: dict[str, Answered] = {}
    for line in _lines_backwards(path):
        try:
            op = json.loads(line)
        except ValueError:
            continue
        if op.get("f") != "intent" or op.get("agent") != agent:
            continue
        cid = op.get("cid")
        if op.get("type") in ("ok", "fail") and len(answers) < n:
            answers.setdefault(cid, (op["t"], op.get("outcome", "")))
        elif op.get("type") == "invoke" and cid in answers and cid not in found:
            found[cid] = Answered(cid, op["key"], op["value"], answers[cid][1])
            if len(answers) == n and len(found) == n:
                break
    return sorted(((answers[cid][0], a) for cid, a in found.items()), key=lambda ta: ta[0])
