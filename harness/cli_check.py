"""`solar-chaos check DIR...`: judge run directories offline (harness/checkers), write each verdict.json
and say it on the terminal. A run directory is untrusted data: what keeps one from being judged is one
line naming it, exit 2, and the others are judged all the same."""

from __future__ import annotations

import argparse
from typing import Any

from harness.errors import HarnessError
from harness.terminal import DEBUG_HINT, debug, safe, say_error


def cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness import store
    from harness.checkers import exit_code
    from harness.checkers.base import merge
    from harness.checkers.verdict import run_dirs

    found: list[tuple[Path, Any]] = []  # per path: its run directories, or why it names none
    for target in map(Path, args.dirs):
        try:
            dirs = list(run_dirs([target]))
            if dirs != [target]:  # a run folder: `report` writes its index.html
                store.refuse_links(target, [store.INDEX])
            found.append((target, dirs))
        except (HarnessError, OSError) as e:  # one path that names nothing judged; the others still are
            found.append((target, e))
    several = sum(len(d) if isinstance(d, list) else 1 for _, d in found) > 1
    validities: list[Any] = []
    for target, dirs in found:
        if isinstance(dirs, list):
            validities += [_check_one(run_dir, args, several) for run_dir in dirs]
        else:
            validities.append(_not_judged(target, dirs, args, several))
    return exit_code(merge(validities))


def _check_one(run_dir: Any, args: argparse.Namespace, several: bool) -> Any:
    """Judge one run directory and print its verdict; what keeps it from being judged (an output name
    that is a link, an unwritable verdict.json, a bug) is one line on stderr naming it, and "unknown"."""
    from harness import store
    from harness.checkers import write_verdict
    from harness.checkers.verdict import details, headline

    try:
        # Outputs are never written through a link: a run directory that has one at an output's name
        # (report.html too, which `report` writes) is refused before any work, whoever would write it.
        store.refuse_links(run_dir, store.OUTPUTS)
        verdict = write_verdict(run_dir)
    except HarnessError as e:
        return _not_judged(run_dir, e, args, several)
    except Exception as e:
        if debug():
            raise
        error = f"{run_dir}: could not check: {type(e).__name__}: {e} ({DEBUG_HINT})"
        return _not_judged(run_dir, error, args, several)
    if args.json:
        _print_json(run_dir, verdict, several)
        return verdict["valid"]
    print(f"{headline(verdict):<10} {safe(run_dir)}")
    if verdict["valid"] is not True:
        for line in details(verdict, args.limit):
            print(f"  {line}")
    return verdict["valid"]


def _not_judged(path: Any, error: object, args: argparse.Namespace, several: bool) -> str:
    """A path that could not be judged: its one line on stderr, and with --json its place on stdout
    too (a verdict of "unknown" with the error), so each directory still has its line there."""
    text = say_error(error)
    if args.json:
        _print_json(path, {"valid": "unknown", "checks": {}, "anomalies": [], "error": text}, several)
    return "unknown"


def _print_json(path: Any, verdict: dict[str, Any], several: bool) -> None:
    """Strict and ASCII (store.strict_json): what the system under test sent is escaped, NaN is null."""
    from harness import store

    shown = {"dir": str(path), **verdict} if several else verdict
    print(store.strict_json(shown, indent=None if several else 1))
