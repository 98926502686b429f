"""The containers' logs in a run directory (logs/<node>.log), read for the report in one streaming
pass per file: the lines that carry a wanted cid (a cid's trace across both fabrics), and the lines
around each fault's start and stop. Times become the run's `t` through timings.json's `t0_unix`.

netsync writes JSON lines with `t` (Unix seconds) and `cid` (docs/contract.md, "Logs"); NATS writes
`[pid] 2026/12/01 01:10:36.860671 [INF] ...`; Toxiproxy JSON with an RFC 3339 `time`. A line
whose time cannot be read is kept for cids, skipped for windows.

A log is untrusted data: only regular files are read (a FIFO would hang the report, a device feed
it without end), never through a link, and a line is cut at store.MAX_LINE_BYTES."""

from __future__ import annotations

import math
import os
import re
import stat
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import store
from harness.store import RunDirError

CID = re.compile(r'"cid":\s*"([A-Za-z0-9._:-]{1,64})"')
UNIX_T = re.compile(r'"t":\s*([0-9]+(?:\.[0-9]+)?)')
NATS_TIME = re.compile(r"^\[\d+\] (\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d+) ")
RFC3339 = re.compile(r'"time":\s*"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z"')
MAX_LINE = 600  # characters of one line shown
PER_CID = 40
PER_WINDOW = 12  # lines per node and window
MAX_LOGS = 200  # log files read; a logs/ folder with more is not the harness's


@dataclass(frozen=True)
class LogLine:
    node: str
    t: float | None  # the run's t, None when the line's time cannot be read
    text: str


def line_time(text: str, t0_unix: float | None) -> float | None:
    if t0_unix is None:
        return None
    try:
        if m := UNIX_T.search(text):
            t = float(m.group(1)) - t0_unix
        elif m := NATS_TIME.match(text):
            when = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC)
            t = when.timestamp() - t0_unix
        elif m := RFC3339.search(text):
            t = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC).timestamp() - t0_unix
        else:
            return None
    except (ValueError, OverflowError):  # a date that does not exist (month 13): no time
        return None
    return t if math.isfinite(t) else None


@dataclass
class LogFindings:
    by_cid: dict[str, list[LogLine]]
    by_window: list[list[LogLine]]  # one list per window, in the order the windows were given
    truncated: dict[str, int]  # per cid: lines beyond PER_CID not kept
    unread: list[str] = field(default_factory=list)  # log files not read, and why


class _Group:
    """The windows of one width, sorted by start: those holding `t` are one run of that order (start
    in [t - width, t]), found by two bisections. A window with its PER_WINDOW lines is skipped
    through `_next`, so a line visits only windows that take it."""

    def __init__(self, width: float, windows: list[tuple[float, float, int]]) -> None:
        windows.sort()
        self.width = width
        self.starts = [a for a, _, _ in windows]
        self.ends = [b for _, b, _ in windows]
        self.ids = [i for _, _, i in windows]
        self.kept = [0] * len(windows)
        self._next = list(range(len(windows) + 1))  # the first open window at or after each

    def _open(self, k: int) -> int:
        root = k
        while self._next[root] != root:
            root = self._next[root]
        while self._next[k] != root:  # path compression: later look-ups jump straight there
            self._next[k], k = root, self._next[k]
        return root

    def take(self, t: float) -> Iterator[int]:
        """The windows (their ids) that hold `t` and still have room, counting the line in each."""
        hi = bisect_right(self.starts, t)
        k = self._open(bisect_left(self.starts, t - self.width))
        while k < hi:
            if self.ends[k] >= t:
                yield self.ids[k]
                self.kept[k] += 1
                if self.kept[k] >= PER_WINDOW:
                    self._next[k] = k + 1
            k = self._open(k + 1)


def _groups(wins: list[tuple[float, float, frozenset[str] | None]], node: str) -> list[_Group]:
    by_width: dict[float, list[tuple[float, float, int]]] = {}
    for i, (a, b, nodes) in enumerate(wins):
        if (nodes is None or node in nodes) and math.isfinite(a) and math.isfinite(b) and a <= b:
            by_width.setdefault(b - a, []).append((a, b, i))
    return [_Group(w, ws) for w, ws in by_width.items()]


def log_files(folder: Path, unread: list[str]) -> list[Path]:
    """logs/*.log that are regular files, not links; what is skipped is said in `unread`."""
    try:
        if stat.S_ISLNK(os.lstat(folder).st_mode):
            unread.append(f"{folder}: a symbolic link, not followed")
            return []
    except OSError:
        return []
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.log"))
    if len(paths) > MAX_LOGS:
        unread.append(f"{folder}: {len(paths)} log files, the first {MAX_LOGS} read")
        paths = paths[:MAX_LOGS]
    kept = []
    for path in paths:
        try:
            mode = os.lstat(path).st_mode
        except OSError as e:
            unread.append(f"{path}: cannot read: {e.strerror or e}")
            continue
        if stat.S_ISLNK(mode):
            unread.append(f"{path}: a symbolic link, not followed")
        else:
            kept.append(path)
    return kept


def _lines(path: Path) -> Iterator[str]:
    """The file's lines as text, each cut at store.MAX_LINE_BYTES (store.log_lines)."""
    for raw in store.log_lines(path):
        yield raw.rstrip(b"\r\n").decode("utf-8", "replace")


def scan(
    run_dir: Path,
    cids: Iterable[str],
    windows: Iterable[tuple[float, float, frozenset[str] | None]],
    t0_unix: float | None,
) -> LogFindings:
    """One pass over every log: the lines of each cid, and for each window (from, to, nodes or None
    for all) the lines inside it, in time order. Each window is its own, even when two are equal (two
    faults that start together). Linear in lines and windows: a line costs two bisections per
    window width, plus the windows that take it."""
    wanted = set(cids)
    wins = list(windows)
    found = LogFindings({c: [] for c in wanted}, [[] for _ in wins], {})
    for path in log_files(run_dir / store.LOGS, found.unread):
        node = path.stem
        groups = _groups(wins, node)
        try:
            for text in _lines(path):
                m = CID.search(text) if wanted else None
                hit = m is not None and m.group(1) in wanted
                if not hit and not groups:
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
                    for group in groups:
                        for i in group.take(t):
                            found.by_window[i].append(line)
        except RunDirError as e:
            found.unread.append(str(e))
        except OSError as e:
            found.unread.append(f"{path}: cannot read: {e.strerror or e}")
    for lines in (*found.by_cid.values(), *found.by_window):
        lines.sort(key=lambda ln: (ln.t is None, ln.t or 0.0))
    return found
