"""index.html of a run folder (reports/<run-id>/): one row per scenario run in it, its verdict, its
anomalies by kind, its duration and seed, and a link to its report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness import store
from harness.checkers.verdict import word
from harness.report.page import CSS, _h, _valid_class


def build(folder: Path, scenario_dirs: list[Path]) -> str:
    """index.html of a run folder: one row per scenario, its verdict, anomalies and report."""
    rows = []
    for d in scenario_dirs:
        scenario = store.read_json(d / store.SCENARIO)
        verdict_path = d / store.VERDICT
        verdict = (
            store.read_json(verdict_path) if verdict_path.is_file() else {"valid": "unknown", "anomalies": []}
        )
        timings = store.read_json(d / store.TIMINGS) if (d / store.TIMINGS).is_file() else {}
        seconds = sum(v for k, v in timings.items() if k.endswith("_s"))
        counts = Counter(a["kind"] for a in verdict.get("anomalies", []))
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"
        link = f"{d.name}/{store.REPORT}"
        rows.append(
            f"<tr><td><a href='{_h(link)}'>{_h(d.name)}</a></td>"
            f"<td class={_valid_class(verdict.get('valid'))}>{word(verdict.get('valid'))}</td>"
            f"<td>{_h(kinds)}</td><td>{seconds:.1f}</td><td>{_h(scenario.get('seed'))}</td></tr>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_h(folder.name)}</title><style>{CSS}</style></head><body>"
        f"<h1>Run {_h(folder.name)}</h1>"
        "<table><tr><th>scenario</th><th>verdict</th><th>anomalies by kind</th><th>duration (s)</th>"
        f"<th>seed</th></tr>{''.join(rows)}</table></body></html>"
    )
