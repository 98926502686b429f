"""The analytics node at the end of a run (docs/run-format.md, analytics.jsonl): wait until it has
followed the store to its last row, then read its applied log (GET /applied) and its view (GET /view)
into the run directory, every `t` moved from Unix seconds to the run's clock. A node that cannot be read
leaves no analytics.jsonl (never a partial file that would read as whole) and scenario.json's extra
field `analytics: {"collected": false, "detail": ...}` saying why; the check is then unknown."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from harness import shape, store
from harness.topology.services import surreal_session
from harness.topology.system import System
from harness.waiting import WaitTimeout, await_until

READ_TIMEOUT_S = 30.0  # between two reads of a body (httpx: per read, not the whole GET)


def run_line(line: dict[str, Any], t0_unix: float) -> dict[str, Any]:
    """A line of /applied with its `t` (Unix seconds) on the run's clock (seconds since the load began,
    as history.jsonl and samples.jsonl place time); a `t` that is no number is left out."""
    out = dict(line)
    t = out.pop("t", None)
    if isinstance(t, int | float) and not isinstance(t, bool):
        out = {"t": round(t - t0_unix, 6), **out}
    return out


def view_line(row: dict[str, Any], t: float) -> dict[str, Any]:
    """A line of /view as the format's `view` line, stamped with when it was read (run clock)."""
    return {"t": round(t, 6), "type": "view", **{k: v for k, v in row.items() if k not in ("t", "type")}}


def analytics_lines(applied: bytes, view: bytes, t0_unix: float, read_at_unix: float) -> list[dict[str, Any]]:
    """The file's lines from the two bodies: the applied log in the consumer's order, then the view.
    ValueError when a body's line is no JSON object (the node answered something else)."""
    lines = [run_line(rec, t0_unix) for rec in _records(applied.splitlines(), "/applied")]
    t = read_at_unix - t0_unix
    lines += [view_line(rec, t) for rec in _records(view.splitlines(), "/view")]
    return lines


def record_collection(out: Path, collected: bool, detail: str = "") -> None:
    """scenario.json's `analytics` field (solar-chaos's own; other tools ignore it): whether the node was
    read, and if not, why."""
    path = out / store.SCENARIO
    resolved = store.read_json(path, "the resolved scenario, a JSON object")
    resolved["analytics"] = {"collected": collected, **({"detail": detail} if detail else {})}
    store.write_json(path, resolved)


def _record(raw: bytes | str, number: int, what: str) -> dict[str, Any] | None:
    """One line of a body as a JSON object (None: a blank line); ValueError when it is not one."""
    if not raw.strip():
        return None
    rec = json.loads(raw)
    if not isinstance(rec, dict):
        raise ValueError(f"{what} line {number} is not a JSON object: {raw[:200]!r}")
    return rec


def _records(lines: Iterable[bytes | str], what: str) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(lines, start=1):
        if (rec := _record(raw, number, what)) is not None:
            yield rec


async def _store_rows(sut: System) -> int:
    async with surreal_session(sut.surreal_url) as db:
        try:
            rows = await db.query(f"SELECT count() FROM {shape.STORE_TABLE} GROUP ALL")
        except Exception:  # never projected: no table
            return 0
    return rows[0].get("count", 0) if isinstance(rows, list) and rows and isinstance(rows[0], dict) else 0


async def wait_followed(sut: System, within: float, say) -> None:  # noqa: ANN001 (a Progress)
    """Until the node is caught up and has followed as many cids (applied, or reported as unread) as the
    store has rows; past `within`, say so and go on (what it lacks is judged: cdc-lost,
    analytics-mismatch)."""
    rows = await _store_rows(sut)
    seen: dict[str, Any] = {}

    async def followed() -> bool:
        async with httpx.AsyncClient(timeout=2.0) as http:
            h = (await http.get(f"{sut.http_url(shape.ANALYTICS)}/healthz")).json()
        seen.update(h)
        # `followed`: the distinct cids applied or reported unread; a node without it is judged by
        # applied + gaps (which a gap line naming no cid, or a cid applied after its report, inflates)
        followed = h.get("followed", h.get("applied", 0) + h.get("gaps", 0))
        return bool(h.get("caught_up")) and followed >= rows

    try:
        await await_until(
            followed, f"analytics to follow the store's {rows} rows", timeout=within, interval=0.25
        )
    except WaitTimeout as e:
        say(f"analytics not caught up: {e}; last /healthz {seen}")


async def write_analytics(sut: System, out: Path, t0_unix: float, within: float, say) -> int | None:  # noqa: ANN001
    """analytics.jsonl in the run directory `out` from the node; the number of applied lines, or None when
    it could not be read (no file then, and scenario.json says why: `record_collection`)."""
    try:
        await wait_followed(sut, within, say)
    except Exception as e:  # the store's count unreadable: what the node holds is still collected
        say(f"analytics: could not wait for it to follow the store: {type(e).__name__}: {e}")
    path, part = out / store.ANALYTICS, out / f"{store.ANALYTICS}.part"
    try:
        counts = await _read_node(sut.http_url(shape.ANALYTICS), part, t0_unix)
    except (httpx.HTTPError, ValueError, OSError) as e:
        why = f"analytics could not be collected: {type(e).__name__}: {e}"
        say(why)
        part.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        record_collection(out, False, why)
        return None
    part.replace(path)
    record_collection(out, True)
    say(f"collected {counts['applied']} analytics changes, {counts['view']} view keys, {counts['gap']} gaps")
    return counts["applied"]


async def _read_node(base: str, path: Path, t0_unix: float) -> Counter[str]:
    """GET /applied streamed into `path` a line at a time (a 2-hour soak's log is a hundred megabytes:
    never held whole), then GET /view; the lines of each type written."""
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=READ_TIMEOUT_S) as http:
        with open(path, "w") as f:
            async with http.stream("GET", f"{base}/applied") as r:
                r.raise_for_status()
                async for rec in _stream_records(r.aiter_lines(), "/applied"):
                    line = run_line(rec, t0_unix)
                    counts[str(line.get("type"))] += 1
                    f.write(json.dumps(line, separators=(",", ":")) + "\n")
            read_at = time.time()
            view = await http.get(f"{base}/view")
            view.raise_for_status()
            for rec in _records(view.content.splitlines(), "/view"):
                counts["view"] += 1
                f.write(json.dumps(view_line(rec, read_at - t0_unix), separators=(",", ":")) + "\n")
    return counts


async def _stream_records(lines: AsyncIterator[str], what: str) -> AsyncIterator[dict[str, Any]]:
    number = 0
    async for raw in lines:
        number += 1
        if (rec := _record(raw, number, what)) is not None:
            yield rec
