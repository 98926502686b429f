"""The human view of a run directory: report.html per scenario, index.html per run folder
(docs/report.md). Built from the run directory and verdict.json alone, like `check`.

Both pages are written through store.write_output (never through a link planted at their name).
A directory whose files cannot all be read still gets its page, saying what is missing; `report`
then exits 2, naming each such directory at the end, after reporting every other one."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import store
from harness.checkers.verdict import run_dirs
from harness.errors import HarnessError
from harness.report import index, page
from harness.report.inputs import verdict_for

INDEX = "index.html"


def report(run_dir: Path) -> tuple[Path, list[str]]:
    """DIR/report.html, and what the page could not show (the inputs it could not read). The checkers
    judge the directory first when verdict.json is missing or malformed. Raises HarnessError when the
    page cannot be written (a link or other non-file at report.html or verdict.json)."""
    run_dir = Path(run_dir)
    store.refuse_links(run_dir, [store.REPORT, store.VERDICT])  # before anything is written
    problems: list[str] = []
    verdict, note = verdict_for(run_dir, problems)
    built = page.render(run_dir, verdict, note, problems)
    return store.write_output(run_dir / store.REPORT, built.html), built.problems


def write_report(run_dir: Path) -> Path:
    """DIR/report.html; the checkers judge the directory first when verdict.json is missing."""
    return report(run_dir)[0]


def write_index(folder: Path, problems: dict[str, list[str]] | None = None) -> Path:
    """FOLDER/index.html for a run folder (reports/<run-id>/): one row per scenario run in it, with
    what kept its report from being written or whole (`problems`, by scenario folder name)."""
    folder = Path(folder)
    dirs = sorted(d for d in folder.iterdir() if d.is_dir() and store.is_run_dir(d))
    return store.write_output(folder / INDEX, index.build(folder, dirs, problems))


def _shown(value: object) -> str:
    """Text for the terminal: a control character (an ESC sequence in a folder name) or a lone
    surrogate (a name that is not UTF-8) is written as an escape, never sent as is."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(value))


def report_paths(paths: list[Path]) -> int:
    """`solar-chaos report PATH...`: a run directory's report, or a run folder's reports and index;
    prints each page written and returns the exit code: 2 when any directory could not be reported
    in full (each named at the end), else 0."""
    failed: list[str] = []

    def one(run_dir: Path, inside: bool) -> list[str]:
        if inside and run_dir.is_symlink():
            problem = f"{run_dir}: a symbolic link, not followed (its report would be written there)"
            failed.append(f"not reported: {problem}")
            return [problem]
        try:
            out, problems = report(run_dir)
        except HarnessError as e:
            failed.append(f"not reported: {e}")
            return [f"report not written: {e}"]
        except Exception as e:  # a case no guard foresaw: this directory's, not the others'
            failed.append(f"not reported: {run_dir}: {type(e).__name__}: {e}")
            return [f"report not written: {type(e).__name__}: {e}"]
        print(_shown(out), flush=True)
        failed.extend(f"incomplete: {run_dir}: {p}" for p in problems)
        return problems

    for path in map(Path, paths):
        if store.is_run_dir(path):
            one(path, inside=False)
            continue
        try:
            dirs = list(run_dirs([path]))  # a run folder: every scenario in it, then its index
        except HarnessError as e:
            failed.append(str(e))
            continue
        problems = {d.name: one(d, inside=True) for d in dirs}
        try:
            print(_shown(write_index(path, problems)), flush=True)
        except HarnessError as e:
            failed.append(f"not written: {e}")
    for line in failed:
        print(f"report: {_shown(line)}", file=sys.stderr)
    if failed:
        print(f"report: {len(failed)} problems; the pages above were written", file=sys.stderr)
    return 2 if failed else 0


__all__ = ["INDEX", "report", "report_paths", "write_index", "write_report"]
