"""A verdict in words, for a terminal or a failing pytest item, and the run directories a path names
(one scenario's directory, or a run folder `reports/<run-id>/` holding several). Every piece of the
data in these words goes through terminal.safe: they are printed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness import store
from harness.store import RunDirError
from harness.terminal import safe

SHOWN = 20  # anomalies listed in full; the rest are counted


def run_dirs(paths: Iterable[Path]) -> Iterator[Path]:
    """Each scenario run directory a path names: itself, or the scenario folders of a run folder."""
    for path in map(Path, paths):
        if store.is_run_dir(path):
            yield path
            continue
        inside = sorted(p for p in path.iterdir() if store.is_run_dir(p)) if path.is_dir() else []
        if not inside:
            what = "no such directory" if not path.exists() else "neither a run directory nor a run folder"
            raise RunDirError(
                path,
                what,
                expected=f"a scenario's run directory (with {store.SCENARIO}) "
                "or a run folder reports/<run-id>/ holding them",
            )
        yield from inside


def word(valid: Any) -> str:
    """A verdict's or a check's `valid` in one word: `valid`, `INVALID` or `UNKNOWN`."""
    return {True: "valid", False: "INVALID"}.get(valid, "UNKNOWN")


def headline(verdict: dict[str, Any]) -> str:
    """`valid`, `INVALID: 3 anomalies (lost 2, no-effect 1)` or `UNKNOWN: ...` in one line."""
    valid = verdict["valid"]
    kinds = Counter(safe(a["kind"]) for a in verdict["anomalies"])
    counted = ", ".join(f"{k} {n}" for k, n in kinds.most_common())
    failed = [safe(name) for name, c in verdict["checks"].items() if c.get("valid") == "unknown"]
    if valid is True:
        return "valid"
    parts = []
    if kinds:
        n = sum(kinds.values())
        parts.append(f"{n} anomal{'y' if n == 1 else 'ies'} ({counted})")
    if failed:
        parts.append(f"could not check {', '.join(failed)}")
    return f"{word(valid)}: " + "; ".join(parts)


def details(verdict: dict[str, Any], limit: int = SHOWN) -> list[str]:
    """The errors of the checks that could not judge, then the anomalies (kind, cid, detail): the first
    `limit` of them, then how many more."""
    lines = []
    failed: dict[str, list[str]] = {}
    for name, check in verdict["checks"].items():
        if check.get("error"):
            failed.setdefault(safe(check["error"]), []).append(safe(name))
    for error, names in failed.items():
        lines.append(f"could not check {', '.join(names)}: {error}")
    anomalies = verdict["anomalies"]
    for a in anomalies[:limit]:
        cid = f" {safe(a['cid'])}" if a.get("cid") else ""
        lines.append(f"{safe(a['kind'])}{cid}: {safe(a['detail'])}")
    if len(anomalies) > limit:
        lines.append(f"... and {len(anomalies) - limit} more (verdict.json has them all)")
    return lines
