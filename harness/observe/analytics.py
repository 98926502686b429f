"""The analytics node at the end of a run (docs/run-format.md, analytics.jsonl): wait until it has
followed the store to its last row, then read its applied log (GET /applied) and its view (GET /view)
into the run directory, every `t` moved from Unix seconds to the run's clock. A node that cannot be read
leaves no analytics.jsonl (never a partial file that would read as whole) and scenario.json's extra
field `analytics: {"collected": false, "detail": ...}` saying why; the check is then unknown."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from harness import shape, store
from harness.topology.services import surreal_session
from harness.topology.system import System
from harness.waiting import WaitTimeout, await_until

READ_TIMEOUT_S = 30.0  # one GET of the applied log: a soak's is tens of megabytes


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
    lines = [run_line(rec, t0_unix) for rec in _json_lines(applied, "/applied")]
    t = read_at_unix - t0_unix
    lines += [view_line(rec, t) for rec in _json_lines(view, "/view")]
    return lines


def record_collection(out: Path, collected: bool, detail: str = "") -> None:
    """scenario.json's `analytics` field (solar-chaos's own; other tools ignore it): whether the node was
    read, and if not, why."""
    path = out / store.SCENARIO
    resolved = store.read_json(path, "the resolved scenario, a JSON object")
    resolved["analytics"] = {"collected": collected, **({"detail": detail} if detail else {})}
    store.write_json(path, resolved)


def _json_lines(body: bytes, what: str) -> list[dict[str, Any]]:
    out = []
    for number, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        rec = json.loads(raw)
        if not isinstance(rec, dict):
            raise ValueError(f"{what} line {number} is not a JSON object: {raw[:200]!r}")
        out.append(rec)
    return out


async def _store_rows(sut: System) -> int:
    async with surreal_session(sut.surreal_url) as db:
        try:
            rows = await db.query(f"SELECT count() FROM {shape.STORE_TABLE} GROUP ALL")
        except Exception:  # never projected: no table
            return 0
    return rows[0].get("count", 0) if isinstance(rows, list) and rows and isinstance(rows[0], dict) else 0


async def wait_followed(sut: System, within: float, say) -> None:  # noqa: ANN001 (a Progress)
    """Until the node is caught up and has applied (or reported as a gap) as many changes as the store
    has rows; past `within`, say so and go on (what it lacks is judged: cdc-lost, analytics-mismatch)."""
    rows = await _store_rows(sut)
    seen: dict[str, Any] = {}

    async def followed() -> bool:
        async with httpx.AsyncClient(timeout=2.0) as http:
            h = (await http.get(f"{sut.http_url(shape.ANALYTICS)}/healthz")).json()
        seen.update(h)
        return bool(h.get("caught_up")) and h.get("applied", 0) + h.get("gaps", 0) >= rows

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
    base = sut.http_url(shape.ANALYTICS)
    path = out / store.ANALYTICS
    try:
        async with httpx.AsyncClient(timeout=READ_TIMEOUT_S) as http:
            read_at = time.time()
            applied = await http.get(f"{base}/applied")
            view = await http.get(f"{base}/view")
        for r in (applied, view):
            r.raise_for_status()
        lines = analytics_lines(applied.content, view.content, t0_unix, read_at)
    except (httpx.HTTPError, ValueError) as e:
        why = f"analytics could not be collected: {type(e).__name__}: {e}"
        say(why)
        path.unlink(missing_ok=True)
        record_collection(out, False, why)
        return None
    _write(path, lines)
    record_collection(out, True)
    n = sum(1 for rec in lines if rec.get("type") == "applied")
    gaps = sum(1 for rec in lines if rec.get("type") == "gap")
    say(f"collected {n} analytics changes, {len(lines) - n - gaps} view keys, {gaps} gaps")
    return n


def _write(path: Path, lines: list[dict[str, Any]]) -> None:
    with open(path, "w") as f:
        for rec in lines:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
