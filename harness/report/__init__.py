"""The human view of a run directory: report.html per scenario, index.html per run folder
(docs/report.md). Built from the run directory and verdict.json alone, like `check`."""

from __future__ import annotations

from pathlib import Path

from harness import store
from harness.checkers import write_verdict
from harness.checkers.verdict import run_dirs
from harness.report import index, page

INDEX = "index.html"


def write_report(run_dir: Path) -> Path:
    """DIR/report.html; the checkers judge the directory first when verdict.json is missing."""
    run_dir = Path(run_dir)
    if not (run_dir / store.VERDICT).is_file():
        write_verdict(run_dir)
    out = run_dir / store.REPORT
    out.write_text(page.build(run_dir), encoding="utf-8")
    return out


def write_index(folder: Path) -> Path:
    """FOLDER/index.html for a run folder (reports/<run-id>/): one row per scenario run in it."""
    folder = Path(folder)
    dirs = sorted(d for d in folder.iterdir() if d.is_dir() and store.is_run_dir(d))
    out = folder / INDEX
    out.write_text(index.build(folder, dirs), encoding="utf-8")
    return out


def report_paths(paths: list[Path]) -> int:
    """`solar-chaos report PATH...`: a run directory's report, or a run folder's reports and index;
    prints each page written and returns the exit code."""
    for path in paths:
        if store.is_run_dir(path):
            print(write_report(path))
            continue
        for run_dir in run_dirs([path]):  # a run folder: every scenario in it, then its index
            print(write_report(run_dir))
        print(write_index(path))
    return 0


__all__ = ["INDEX", "report_paths", "write_index", "write_report"]
