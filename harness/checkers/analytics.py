"""The analytics consumer against the store it follows (docs/run-format.md: cdc-lost, cdc-order,
analytics-mismatch): every store row's change applied, each key's view the store's row of highest
stream_seq, and no key's view left on an older change applied after a newer one. Not run when the
system had no analytics node; unknown when it had one whose analytics.jsonl is absent (scenario.json's
`analytics.collected: false` says why), never a silent pass.

analytics.jsonl is read a line at a time (`Run.changes`): of an applied change only its cid's hash is
kept, and per key its highest change and its view, so the check's memory is 8 bytes per change (500 MiB
at 482,086 changes when each line was kept whole: bench/README.md, Checker). A store row is cdc-lost
when its cid's hash is no applied one's: a 64-bit collision could hide one loss, never invent one."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgspec
import numpy as np

from harness import store
from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import Change, Run

MAX_LISTED = 20  # anomalies of one kind named one by one; the rest are counted in the last


def _value(raw: msgspec.Raw) -> Any:
    """A key or value as JSON data, so that `5` and `5.0`, or spacing, compare as the same."""
    return msgspec.json.decode(bytes(raw))


def _key(raw: msgspec.Raw) -> str:
    """A key as one canonical JSON text (keys may be any JSON value)."""
    return msgspec.json.encode(_value(raw)).decode()


CHUNK = 1 << 16  # store rows whose cids are looked up in the applied ones at a time


def _latest_rows(
    run: Run, applied: np.ndarray
) -> tuple[dict[str, tuple[int, str | None, Any]], set[str], int]:
    """Per key, the store's row of highest stream_seq (seq, cid, value); the stored cids never applied
    (`applied`: the applied cids' hashes, sorted); the rows. A chunk of rows at a time: no set of every
    cid is kept."""
    latest: dict[str, tuple[int, str | None, Any]] = {}
    lost: set[str] = set()
    chunk: list[str] = []
    n = 0

    def unapplied() -> None:
        hashes = np.fromiter((hash(c) for c in chunk), dtype=np.int64, count=len(chunk))
        found = np.searchsorted(applied, hashes)
        found[found == len(applied)] = 0
        missing = applied[found] != hashes if len(applied) else np.ones(len(chunk), dtype=bool)
        lost.update(chunk[i] for i in np.flatnonzero(missing))
        chunk.clear()

    for row in run.rows():
        n += 1
        if row.cid is not None:
            chunk.append(row.cid)
            if len(chunk) >= CHUNK:
                unapplied()
        seq = row.stream_seq if row.stream_seq is not None else -1
        key = _key(row.key)
        if key not in latest or seq > latest[key][0]:
            latest[key] = (seq, row.cid, _value(row.value))
    unapplied()
    return latest, lost, n


class _Log(NamedTuple):
    """What the check keeps of analytics.jsonl, read a line at a time: a hash per applied change, and
    per key only its highest applied change and its view."""

    applied: np.ndarray  # the applied cids' hashes, sorted
    count: int
    late: list[tuple[str, int, str | None, int, str | None]]  # key, seq, cid, and the higher one before
    view: dict[str, Change]
    gaps: list[Change]


def _read(lines: Iterator[Change]) -> _Log:
    hashes = array("q")
    highest: dict[str, tuple[int, str | None]] = {}
    late: list[tuple[str, int, str | None, int, str | None]] = []
    view: dict[str, Change] = {}
    gaps: list[Change] = []
    for c in lines:
        if c.type == "view":
            view[_key(c.key)] = c
        elif c.type == "gap":
            gaps.append(c)
        else:
            hashes.append(hash(c.cid))
            if c.stream_seq is None:
                continue
            key = _key(c.key)
            top = highest.get(key)
            if top is not None and c.stream_seq < top[0]:
                late.append((key, c.stream_seq, c.cid, *top))
                continue
            highest[key] = (c.stream_seq, c.cid)
    applied = np.sort(np.frombuffer(hashes, dtype=np.int64)) if hashes else np.array([], dtype=np.int64)
    return _Log(applied, len(hashes), late, view, gaps)


def _capped(anomalies: list[Anomaly], kind: str) -> list[Anomaly]:
    if len(anomalies) <= MAX_LISTED:
        return anomalies
    rest = len(anomalies) - MAX_LISTED + 1
    return [*anomalies[: MAX_LISTED - 1], Anomaly(kind, f"and {rest} more of this kind")]


def _lost(lost: set[str], gaps: list[Change], excused: set[str]) -> list[Anomaly]:
    """Every stored cid never applied, but those in `excused` (reported as gaps, when the scenario
    expects them)."""
    why = (
        f"; the consumer reported {len(gaps)} gap{'s' if len(gaps) > 1 else ''}, the first: {gaps[0].detail}"
        if gaps
        else ""
    )
    return [
        Anomaly("cdc-lost", f"a store row whose change the analytics consumer never applied{why}", cid)
        for cid in sorted(lost - excused)
    ]


def _out_of_order(log: _Log) -> list[Anomaly]:
    """Per key, an applied change of lower stream_seq after one of higher, with the view left on it."""
    anomalies: list[Anomaly] = []
    for key, seq, cid, top_seq, top_cid in log.late:
        held = log.view.get(key)
        if held is not None and held.stream_seq == seq:
            anomalies.append(
                Anomaly(
                    "cdc-order",
                    f"key {key}: stream_seq {seq} applied after {top_seq} (cid {top_cid}), and the view "
                    "holds the older",
                    cid,
                )
            )
    return anomalies


def _mismatches(latest: dict[str, tuple[int, str | None, Any]], view: dict[str, Change]) -> list[Anomaly]:
    anomalies: list[Anomaly] = []
    for key in sorted(set(latest) | set(view)):
        if key not in view:
            seq, cid, _v = latest[key]
            anomalies.append(
                Anomaly(
                    "analytics-mismatch", f"key {key}: in the store (stream_seq {seq}), not in the view", cid
                )
            )
            continue
        held = view[key]
        if key not in latest:
            anomalies.append(
                Anomaly("analytics-mismatch", f"key {key}: in the view, not in the store", held.cid)
            )
            continue
        seq, cid, value = latest[key]
        if held.cid != cid or _value(held.value) != value:
            anomalies.append(
                Anomaly(
                    "analytics-mismatch",
                    f"key {key}: the view holds {_value(held.value)!r} (cid {held.cid}, stream_seq "
                    f"{held.stream_seq}), the store's latest row {value!r} (cid {cid}, stream_seq {seq})",
                    cid,
                )
            )
    return anomalies


def check(run: Run) -> Result:
    settings = run.settings
    if settings.analytics_uncollected is not None:  # the node could not be read: nothing to judge whole
        return Result({"judged": False}, valid="unknown", error=settings.analytics_uncollected)
    lines = run.changes()
    if lines is None and settings.analytics:
        why = f"topology.analytics is true but the run has no {store.ANALYTICS}"
        return Result({"judged": False}, valid="unknown", error=why)
    if lines is None:
        return Result({"judged": False, "why": f"no {store.ANALYTICS}: the system has no analytics consumer"})
    log = _read(lines)
    latest, lost, rows = _latest_rows(run, log.applied)
    # expect.cdc_gaps: expected: the consumer's own report of a change it could not read is the point
    reported = {c.cid for c in log.gaps if c.cid is not None}
    excused = reported if settings.cdc_gaps == "expected" else set()
    anomalies = (
        _capped(_lost(lost, log.gaps, excused), "cdc-lost")
        + _capped(_out_of_order(log), "cdc-order")
        + _capped(_mismatches(latest, log.view), "analytics-mismatch")
    )
    figures = {
        "applied": log.count,
        "applied_cids": int(len(np.unique(log.applied))),
        "store_rows": rows,
        "view_keys": len(log.view),
        "gaps": len(log.gaps),
        "reported_lost": len(lost & reported),
    }
    return Result(figures, anomalies)


CHECKER = Checker("analytics", check, ("cdc-lost", "cdc-order", "analytics-mismatch"))
