"""What the report reads of a run directory besides the checkers' facts (scenario.json, verdict.json,
timings.json), read as untrusted data: a file that cannot be read becomes a problem the page shows
(and `report` exits 2 on), a field of the wrong type is left out, never a traceback."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness import store
from harness.checkers import write_verdict
from harness.store import RunDirError

VALID = (True, False, "unknown")
TEXT_CHARS = 4000  # of one text from the data shown in the page (a detail, a description)


def number(value: Any) -> float | None:
    """A finite number from JSON, or None (a bool, a string, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return value if math.isfinite(value) else None


def text(value: Any, limit: int = TEXT_CHARS) -> str:
    """A value from the data as text of at most `limit` characters."""
    try:
        out = value if isinstance(value, str) else str(value)
    except ValueError:  # an integer of more digits than Python writes
        out = f"(an integer of more than {limit} digits)"
    return out if len(out) <= limit else out[:limit] + f" ... ({len(out) - limit} more characters)"


def section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def read_scenario(run_dir: Path, problems: list[str]) -> dict[str, Any]:
    try:
        return store.read_json(run_dir / store.SCENARIO, "the resolved scenario, a JSON object")
    except RunDirError as e:
        problems.append(str(e))
        return {}


def read_timings(run_dir: Path, problems: list[str]) -> dict[str, float]:
    """timings.json's numbers (it is optional: absent is no problem)."""
    path = run_dir / store.TIMINGS
    try:
        data = store.read_json(path, "the phases' seconds and t0_unix, a JSON object")
    except RunDirError as e:
        if path.exists() or path.is_symlink():
            problems.append(str(e))
        return {}
    return {k: v for k, raw in data.items() if (v := number(raw)) is not None}


def verdict_shape(verdict: dict[str, Any]) -> str | None:
    """What makes this verdict.json unusable, or None: the page and the index read `valid`, each
    check's object and each anomaly's kind, cid and detail."""
    if verdict.get("valid") not in VALID:
        return 'valid: expected true, false or "unknown"'
    checks = verdict.get("checks")
    if not isinstance(checks, dict) or not all(isinstance(c, dict) for c in checks.values()):
        return "checks: expected an object of objects"
    anomalies = verdict.get("anomalies")
    if not isinstance(anomalies, list):
        return "anomalies: expected a list"
    for i, a in enumerate(anomalies):
        if not isinstance(a, dict) or not isinstance(a.get("kind"), str):
            return f"anomalies[{i}]: expected an object with a kind (a string)"
        if not isinstance(a.get("cid"), str | None) or "detail" not in a:
            return f"anomalies[{i}]: expected a cid (a string) or none, and a detail"
    return None


def read_verdict(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(verdict.json, None), or (None, why it cannot be used) when it is missing or malformed."""
    path = run_dir / store.VERDICT
    try:
        verdict = store.read_json(path, "the checkers' verdict (docs/run-format.md)")
    except RunDirError as e:
        return None, str(e)
    why = verdict_shape(verdict)
    return (verdict, None) if why is None else (None, f"{path}: {why}")


def unjudged(why: str) -> dict[str, Any]:
    """The verdict shown when the checkers could not judge the directory at all."""
    return {
        "valid": "unknown",
        "checks": {"the run directory": {"valid": "unknown", "error": why}},
        "anomalies": [],
    }


def verdict_for(run_dir: Path, problems: list[str]) -> tuple[dict[str, Any], str | None]:
    """The verdict the page shows, and a note when it was judged here: verdict.json when usable,
    else the checkers judge the directory and write it (as `check` would). When they cannot judge it
    at all, an unknown verdict, and why in `problems`."""
    note = None
    if (run_dir / store.VERDICT).exists():
        verdict, why = read_verdict(run_dir)
        if verdict is not None:
            return verdict, None
        note = f"{why}; judged again and written afresh"
    try:
        return write_verdict(run_dir), note
    except store.OutputError:
        raise
    except RunDirError as e:
        problems.append(str(e))
        return unjudged(str(e)), None
