"""The containers' logs in a run directory (logs/<node>.log), read for the report in one streaming
pass per file: the lines that carry a wanted cid (a cid's trace across both fabrics), and the lines
around each fault's start and stop. Times become the run's `t` through timings.json's `t0_unix`.

netsync writes JSON lines with `t` (Unix seconds) and `cid` (docs/contract.md, "Logs"); NATS writes
`[pid] 2026/12/01 01:10:36.860671 [INF] ...`; Toxiproxy JSON with an RFC 3339 `time`. A line
whose time cannot be read is kept for cids, skipped for windows."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness import store

CID = re.compile(r'"cid":\s*"([A-Za-z0-9._:-]{1,64})"')
UNIX_T = re.compile(r'"t":\s*([0-9]+(?:\.[0-9]+)?)')
NATS_TIME = re.compile(r"^\[\d+\] (\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d+) ")
RFC3339 = re.compile(r'"time":\s*"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z"')
MAX_LINE = 600  # characters of one line shown
PER_CID = 40
PER_WINDOW = 12  # lines per node and window


@dataclass(frozen=True)
class LogLine:
    node: str
    t: float | None  # the run's t, None when the line's time cannot be read
    text: str


def line_time(text: str, t0_unix: float | None) -> float | None:
    if t0_unix is None:
        return None
    if m := UNIX_T.search(text):
        return float(m.group(1)) - t0_unix
    if m := NATS_TIME.match(text):
        when = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC)
        return when.timestamp() - t0_unix
    if m := RFC3339.search(text):
        return datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC).timestamp() - t0_unix
    return None


@dataclass
class LogFindings:
    by_cid: dict[str, list[LogLine]]
    by_window: dict[tuple[float, float], list[LogLine]]
    truncated: dict[str, int]  # per cid: lines beyond PER_CID not kept


def scan(
    run_dir: Path,
    cids: Iterable[str],
    windows: Iterable[tuple[float, float, frozenset[str] | None]],
    t0_unix: float | None,
) -> LogFindings:
    """One pass over every log: the lines of each cid, and for each window (from, to, nodes or None
    for all) the lines inside it, in time order."""
    wanted = set(cids)
    wins = list(windows)
    found = LogFindings({c: [] for c in wanted}, {(a, b): [] for a, b, _ in wins}, {})
    folder = run_dir / store.LOGS
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.log")):
        node = path.stem
        kept = {(a, b): 0 for a, b, _ in wins}  # this node's lines in each window
        with path.open("r", encoding="utf-8", errors="replace") as f:
            for raw in f:
                text = raw.rstrip("\n")
                m = CID.search(text) if wanted else None
                hit = m is not None and m.group(1) in wanted
                in_window = [
                    (a, b)
                    for a, b, nodes in wins
                    if (nodes is None or node in nodes) and kept[(a, b)] < PER_WINDOW
                ]
                if not hit and not in_window:
                    continue
                t = line_time(text, t0_unix)
                line = LogLine(node, t, text[:MAX_LINE])
                if hit:
                    cid = m.group(1)  # type: ignore[union-attr]
                    if len(found.by_cid[cid]) < PER_CID:
                        found.by_cid[cid].append(line)
                    else:
                        found.truncated[cid] = found.truncated.get(cid, 0) + 1
                if t is not None:
                    for a, b in in_window:
                        if a <= t <= b:
                            found.by_window[(a, b)].append(line)
                            kept[(a, b)] += 1
    for lines in (*found.by_cid.values(), *found.by_window.values()):
        lines.sort(key=lambda ln: (ln.t is None, ln.t or 0.0))
    return found
