"""Reading and checking pages of SurrealDB's changefeed (`SHOW CHANGES FOR TABLE t SINCE v LIMIT n`),
the analytics view they are applied to, and the volume that keeps both (State).

What SurrealDB 3.3.5 does, measured (docs/contract.md, "Analytics"): SINCE is inclusive; the answer
is a list of `{versionstamp, changes: [{update: row} | {delete: ...} | {define_table: ...}]}` in
ascending versionstamp; a versionstamp is the server's wall clock in milliseconds shifted left 16
bits plus a counter, ordered only within one server process; a table that does not exist answers an
empty list; entries older than the retention vanish (swept about every 30 s) without an error."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from netsync.settings import ConfigError

LIMIT_MAX = 1000  # SHOW CHANGES' own bound on LIMIT
# A SurrealDB duration, as `DEFINE TABLE ... CHANGEFEED <duration>` takes it: 30s, 1h, 1h30m.
DURATION = re.compile(r"^(?:[0-9]+(?:ns|us|µs|ms|s|m|h|d|w|y))+$")
LAZY_FLUSH_S = 10.0  # buggify cursor-before-apply: how long applied lines may sit in the buffer
RETENTION_ENV = "NETSYNC_CHANGEFEED_RETENTION"
DEFAULT_RETENTION = "1h"


def retention_from_env() -> str:
    """The projected table's changefeed retention, read by the projector and analytics alike (both
    define the table, whichever connects first)."""
    raw = os.environ.get(RETENTION_ENV) or DEFAULT_RETENTION
    if not DURATION.match(raw) or not any(c != "0" for c in raw if c.isdigit()):
        raise ConfigError(f"{RETENTION_ENV}={raw!r} is not a SurrealDB duration above zero (30s, 10m, 1h)")
    return raw


def stamp_ms(versionstamp: int) -> int:
    """The server's wall clock (Unix milliseconds) when it gave `versionstamp`."""
    return versionstamp >> 16


def stamp_at(ms: int) -> int:
    """The lowest versionstamp the server could give at Unix millisecond `ms`."""
    return max(0, ms) << 16


class FeedError(Exception):
    """SHOW CHANGES answered something that is not a changefeed page."""


@dataclass(frozen=True)
class Change:
    """One row written to the projected table, as the changefeed carries it."""

    versionstamp: int
    cid: str
    key: str
    value: int
    stream_seq: int

    def line(self) -> dict[str, Any]:
        return {
            "versionstamp": self.versionstamp,
            "cid": self.cid,
            "key": self.key,
            "value": self.value,
            "stream_seq": self.stream_seq,
        }


@dataclass
class Page:
    """One answer of SHOW CHANGES from `cursor`: its row changes in the feed's order, and what
    in it is wrong (a versionstamp at or below the one before it, or below the cursor)."""

    cursor: int
    limit: int
    entries: int = 0  # every entry, rows or not: LIMIT counts them all
    last: int | None = None  # the last entry's versionstamp
    changes: list[Change] = field(default_factory=list)
    backwards: list[tuple[int, int]] = field(default_factory=list)  # (stamp, the bound it broke)
    ignored: list[str] = field(default_factory=list)  # entries that are no row of ours
    others: int = 0  # changes of other tables (a database's feed)
    cursor_cap: int | None = None  # set when entries are stamped past the server's clock

    @property
    def full(self) -> bool:
        """Whether more may follow at once (the answer was cut at LIMIT)."""
        return self.entries >= self.limit

    @property
    def next_cursor(self) -> int:
        """Where the next read starts: SINCE is inclusive, so one past the last entry."""
        return self.cursor if self.last is None else max(self.cursor, self.last + 1)

    @property
    def capped_cursor(self) -> int:
        """next_cursor, but never past `cursor_cap`."""
        return self.next_cursor if self.cursor_cap is None else min(self.next_cursor, self.cursor_cap)


def _row_change(versionstamp: int, row: Any) -> Change | None:
    if not isinstance(row, dict):
        return None
    cid, key, value, seq = (row.get(f) for f in ("cid", "key", "value", "stream_seq"))
    if not (isinstance(cid, str) and cid and isinstance(key, str)):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (value, seq)):
        return None
    return Change(versionstamp, cid, key, value, seq)


def table_of(change: Any) -> str | None:
    """The table one change of the database's feed is about: an update's or delete's record id
    (`sentiment:x`, or the SDK's RecordID), a table definition's name."""
    if not isinstance(change, dict) or len(change) != 1:
        return None
    body = next(iter(change.values()))
    if not isinstance(body, dict):
        return None
    if "define_table" in change:
        return body.get("name") if isinstance(body.get("name"), str) else None
    rid = body.get("id")
    table = getattr(rid, "table_name", None)
    if table is None and isinstance(rid, str):
        table = rid.partition(":")[0]
    return table if isinstance(table, str) else None


def parse_page(answer: Any, cursor: int, limit: int, table: str | None = None) -> Page:
    """The page SHOW CHANGES answered from `cursor`; FeedError if it is not one. With `table`, the
    answer is the database's feed (`SHOW CHANGES FOR DATABASE`: SurrealDB 3.3.5 applies LIMIT
    before a table's filter, so a table's own feed cannot tell its end from a run of other tables'
    entries) and the changes of other tables are passed over."""
    if not isinstance(answer, list):
        raise FeedError(f"SHOW CHANGES answered {type(answer).__name__}, not a list: {answer!r:.200}")
    page = Page(cursor, limit, entries=len(answer))
    bound = cursor - 1  # each stamp must be above this: at or past the cursor, above the previous
    for i, entry in enumerate(answer):
        if not isinstance(entry, dict):
            raise FeedError(f"entry {i} is not an object: {entry!r:.200}")
        stamp, changes = entry.get("versionstamp"), entry.get("changes")
        if not isinstance(stamp, int) or isinstance(stamp, bool) or not isinstance(changes, list):
            raise FeedError(f"entry {i} has no integer versionstamp and list of changes: {entry!r:.200}")
        if stamp <= bound:
            page.backwards.append((stamp, bound + 1 if i == 0 else bound))
        bound = max(bound, stamp)
        page.last = stamp if page.last is None else max(page.last, stamp)
        for change in changes:
            if table is not None and table_of(change) not in (table, None):
                page.others += 1
                continue
            kind = next(iter(change), None) if isinstance(change, dict) and len(change) == 1 else None
            row = _row_change(stamp, change[kind]) if kind == "update" else None
            if row is None:
                page.ignored.append(f"{stamp}:{kind or 'unreadable'}")
            else:
                page.changes.append(row)
    return page


@dataclass(frozen=True)
class ViewRow:
    key: str
    value: int
    cid: str
    stream_seq: int

    def line(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "cid": self.cid, "stream_seq": self.stream_seq}


class View:
    """Per key the latest value, by stream_seq; and every cid applied, so that a change seen again
    (the feed read twice, a redelivery's rewrite) changes nothing: exactly once in the view."""

    def __init__(self) -> None:
        self.rows: dict[str, ViewRow] = {}
        self.cids: set[str] = set()

    def apply(self, change: Change, guard: bool = True) -> str:
        """`applied` (a new cid, the view's row for its key if its stream_seq is the highest),
        `stale` (a new cid, older than the view's row: recorded, the row kept) or `duplicate`.
        `guard=False` (buggify apply-out-of-order): the last one applied wins, whatever its seq."""
        if change.cid in self.cids:
            return "duplicate"
        self.cids.add(change.cid)
        held = self.rows.get(change.key)
        if guard and held is not None and held.stream_seq > change.stream_seq:
            return "stale"
        self.rows[change.key] = ViewRow(change.key, change.value, change.cid, change.stream_seq)
        return "applied"


# The scout's subject, as netsync.telemetry.SUMMARY_SUBJECT (not imported: that module pulls libp2p in).
SUMMARY_SUBJECT = "root.solar.telemetry.peer-health"
SUMMARY_FIELDS = ("samples", "peers_reachable_min", "buffer_depth_max", "nats_reachable_last")


def summary_agents(summary: Any) -> dict[str, dict[str, Any]]:
    """Per agent what one scout summary said (docs/contract.md, "Telemetry"), with its window;
    ValueError naming what is wrong for a message that is not a summary."""
    if not isinstance(summary, dict) or not isinstance(summary.get("agents"), dict):
        raise ValueError("not an object with an object 'agents'")
    window = {}
    for name in ("window_start", "window_end"):
        v = summary.get(name)
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ValueError(f"{name} is not a number")
        window[name] = v
    out = {}
    for agent, figures in summary["agents"].items():
        if not isinstance(figures, dict):
            raise ValueError(f"agents.{agent} is not an object")
        out[agent] = {"agent": agent, **window, **{f: figures.get(f) for f in SUMMARY_FIELDS}}
    return out


def unread(table_cids: list[Any], known: set[str]) -> list[str]:
    """The cids of the table's rows whose change the consumer never read, nor reported yet."""
    return sorted({c for c in table_cids if isinstance(c, str)} - known)


class StateError(Exception):
    """The analytics volume holds something this role did not write; the message names the file."""


class State:
    """The volume: `cursor.json` (replaced atomically) and `applied.jsonl` (append only: `applied`
    and `gap` lines, RUN-FORMAT's). On open the log is replayed into the view; a torn last line (a
    crash mid-append) is cut off, any other bad line is a StateError naming file:line."""

    def __init__(self, folder: Path, guard: bool = True, lazy: bool = False) -> None:
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cursor_path = self.dir / "cursor.json"
        self.log_path = self.dir / "applied.jsonl"
        self.guard = guard
        self.lazy = lazy  # buggify cursor-before-apply: appends sit in a buffer, flushed now and then
        self.view = View()
        self.gapped: set[str] = set()  # cids reported as never read
        self.applied = self.gaps = 0
        self.cursor = self._read_cursor()
        self._replay()
        self._log: IO[str] = open(self.log_path, "a", encoding="utf-8", buffering=1 << 20)
        self._flushed_at = time.monotonic()

    def _read_cursor(self) -> int:
        try:
            raw = self.cursor_path.read_text()
        except FileNotFoundError:
            return 0
        try:
            cursor = json.loads(raw)["cursor"]
        except (ValueError, KeyError, TypeError):
            raise StateError(f"{self.cursor_path}: not {{'cursor': <versionstamp>}}: {raw[:100]!r}") from None
        if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
            raise StateError(f"{self.cursor_path}: cursor {cursor!r} is not a versionstamp")
        return cursor

    def _replay(self) -> None:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        if lines[-1]:  # no newline at the end: the last append was torn by a crash
            with open(self.log_path, "r+b") as f:
                f.truncate(len(data) - len(lines[-1]))
                os.fsync(f.fileno())
        for n, raw in enumerate(lines[:-1], 1):
            try:
                rec = json.loads(raw)
                if rec["type"] == "applied":
                    fields = (rec["versionstamp"], rec["cid"], rec["key"], rec["value"], rec["stream_seq"])
                    self.view.apply(Change(*fields), self.guard)
                    self.applied += 1
                elif rec["type"] == "gap":
                    self.gaps += 1
                    if isinstance(rec.get("cid"), str):
                        self.gapped.add(rec["cid"])
                else:
                    raise ValueError(f"unknown type {rec['type']!r}")
            except (ValueError, KeyError, TypeError) as e:
                raise StateError(f"{self.log_path}:{n}: not an applied or gap line ({e})") from None

    def append(self, lines: list[dict[str, Any]]) -> None:
        for rec in lines:
            self._log.write(json.dumps(rec) + "\n")
        if not self.lazy or time.monotonic() - self._flushed_at >= LAZY_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        self._log.flush()
        os.fsync(self._log.fileno())
        self._flushed_at = time.monotonic()

    def save_cursor(self, cursor: int) -> None:
        tmp = self.cursor_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"cursor": cursor}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.cursor_path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.cursor = cursor

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._log.close()

    @property
    def known(self) -> int:
        """Distinct cids applied or reported as never read."""
        cids = self.view.cids
        return len(cids) + (len(self.gapped - cids) if self.gapped else 0)
