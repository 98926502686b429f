"""index.html of a run folder (reports/<run-id>/): one row per scenario run in it, its verdict, its
anomalies by kind, its duration and seed, and a link to its report. A scenario folder's name is data:
its link is relative (`./` and the name percent-encoded, so `javascript:...` or `?#` stay a path) and
its text escaped; a scenario that could not be reported has its row, saying why."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from harness import store
from harness.checkers.verdict import word
from harness.report.inputs import read_scenario, read_timings, read_verdict, text
from harness.report.page import CSS, _h, _valid_class


def href(name: str) -> str:
    """The relative link to a scenario folder's report.html, whatever the folder's name holds (the
    name's own bytes, so a name that is not UTF-8 still links to its folder)."""
    return "./" + quote(os.fsencode(name), safe="") + "/" + store.REPORT


def _has_report(d: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(d / store.REPORT).st_mode)
    except OSError:
        return False


def build(folder: Path, scenario_dirs: list[Path], problems: dict[str, list[str]] | None = None) -> str:
    """index.html of a run folder: one row per scenario, its verdict, anomalies and report; what kept a
    scenario's report from being written or whole (`problems`, by folder name) in its last column."""
    problems = problems or {}
    rows = []
    for d in scenario_dirs:
        notes = list(problems.get(d.name, []))
        scenario = read_scenario(d, notes) if not d.is_symlink() else {}
        verdict, why = read_verdict(d) if not d.is_symlink() else (None, None)
        if verdict is None:
            verdict = {"valid": "unknown", "anomalies": []}
            if why and why not in notes:
                notes.append(why)
        timings = read_timings(d, notes) if not d.is_symlink() else {}
        seconds = sum(v for k, v in timings.items() if k.endswith("_s"))
        counts = Counter(a["kind"] for a in verdict["anomalies"])
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"
        name = _h(text(d.name, 200))
        cell = f'<a href="{_h(href(d.name))}">{name}</a>' if _has_report(d) and not d.is_symlink() else name
        said = "<br>".join(_h(text(n, 1000)) for n in dict.fromkeys(notes))
        rows.append(
            f"<tr><td>{cell}</td>"
            f"<td class={_valid_class(verdict['valid'])}>{word(verdict['valid'])}</td>"
            f"<td>{_h(text(kinds, 1000))}</td><td>{seconds:.1f}</td>"
            f"<td>{_h(text(scenario.get('seed'), 40))}</td><td>{said}</td></tr>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_h(text(folder.name, 200))}</title><style>{CSS}</style></head><body>"
        f"<h1>Run {_h(text(folder.name, 200))}</h1>"
        "<table><tr><th>scenario</th><th>verdict</th><th>anomalies by kind</th><th>duration (s)</th>"
        f"<th>seed</th><th>problems</th></tr>{''.join(rows)}</table></body></html>"
    )
