"""The analytics consumer against the store it follows (docs/run-format.md: cdc-lost, cdc-order,
analytics-mismatch): every store row's change applied, each key's view the store's row of highest
stream_seq, and no key's view left on an older change applied after a newer one. Not run when the
system had no analytics node; unknown when it had one whose analytics.jsonl is absent (scenario.json's
`analytics.collected: false` says why), never a silent pass."""

from __future__ import annotations

from typing import Any

import msgspec

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


def _latest_rows(run: Run) -> tuple[dict[str, tuple[int, str | None, Any]], set[str], int]:
    """Per key, the store's row of highest stream_seq (seq, cid, value); every cid stored; rows."""
    latest: dict[str, tuple[int, str | None, Any]] = {}
    cids: set[str] = set()
    n = 0
    for row in run.rows():
        n += 1
        if row.cid is not None:
            cids.add(row.cid)
        seq = row.stream_seq if row.stream_seq is not None else -1
        key = _key(row.key)
        if key not in latest or seq > latest[key][0]:
            latest[key] = (seq, row.cid, _value(row.value))
    return latest, cids, n


def _capped(anomalies: list[Anomaly], kind: str) -> list[Anomaly]:
    if len(anomalies) <= MAX_LISTED:
        return anomalies
    rest = len(anomalies) - MAX_LISTED + 1
    return [*anomalies[: MAX_LISTED - 1], Anomaly(kind, f"and {rest} more of this kind")]


def _lost(applied: list[Change], cids: set[str], gaps: list[Change], excused: set[str]) -> list[Anomaly]:
    """Every stored cid never applied, but those in `excused` (reported as gaps, when the scenario
    expects them)."""
    seen = {c.cid for c in applied} | excused
    why = (
        f"; the consumer reported {len(gaps)} gap{'s' if len(gaps) > 1 else ''}, the first: {gaps[0].detail}"
        if gaps
        else ""
    )
    return [
        Anomaly("cdc-lost", f"a store row whose change the analytics consumer never applied{why}", cid)
        for cid in sorted(cids - seen)
    ]


def _out_of_order(applied: list[Change], view: dict[str, Change]) -> list[Anomaly]:
    """Per key, an applied change of lower stream_seq after one of higher, with the view left on it."""
    highest: dict[str, Change] = {}
    anomalies: list[Anomaly] = []
    for c in applied:
        if c.stream_seq is None:
            continue
        key = _key(c.key)
        top = highest.get(key)
        if top is not None and top.stream_seq is not None and c.stream_seq < top.stream_seq:
            held = view.get(key)
            if held is not None and held.stream_seq == c.stream_seq:
                anomalies.append(
                    Anomaly(
                        "cdc-order",
                        f"key {key}: stream_seq {c.stream_seq} applied after {top.stream_seq} "
                        f"(cid {top.cid}), and the view holds the older",
                        c.cid,
                    )
                )
            continue
        highest[key] = c
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
    lines = run.analytics
    if lines is None and settings.analytics:
        why = f"topology.analytics is true but the run has no {store.ANALYTICS}"
        return Result({"judged": False}, valid="unknown", error=why)
    if lines is None:
        return Result({"judged": False, "why": f"no {store.ANALYTICS}: the system has no analytics consumer"})
    applied = [c for c in lines if c.type == "applied"]
    view = {_key(c.key): c for c in lines if c.type == "view"}
    gaps = [c for c in lines if c.type == "gap"]
    latest, cids, rows = _latest_rows(run)
    # expect.cdc_gaps: expected: the consumer's own report of a change it could not read is the point
    reported = {c.cid for c in gaps if c.cid is not None}
    excused = reported if run.settings.cdc_gaps == "expected" else set()
    anomalies = (
        _capped(_lost(applied, cids, gaps, excused), "cdc-lost")
        + _capped(_out_of_order(applied, view), "cdc-order")
        + _capped(_mismatches(latest, view), "analytics-mismatch")
    )
    figures = {
        "applied": len(applied),
        "applied_cids": len({c.cid for c in applied}),
        "store_rows": rows,
        "view_keys": len(view),
        "gaps": len(gaps),
        "reported_lost": len((cids - {c.cid for c in applied}) & reported),
    }
    return Result(figures, anomalies)


CHECKER = Checker("analytics", check, ("cdc-lost", "cdc-order", "analytics-mismatch"))
