"""`solar-chaos shrink RUN_DIR [--budget 30m] [--first K/N] [--confirm K/N]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.scenario.types import parse_duration

DESCRIPTION = (
    "Search for the smallest scenario that still fails like the run in RUN_DIR: fewer faults (delta "
    "debugging; a random block's faults written out), faults merged, shorter windows, fewer agents, a "
    "lower rate, a shorter load. Each candidate is a plain scenario run at the run's seed on the same "
    "system; it still fails when its verdict has an anomaly of a kind the run had, in K of N runs. "
    "Writes RUN_DIR/shrink/: shrink.jsonl, minimal.yaml, minimal.html. Resumes from shrink.jsonl. "
    "Exit 0 with a confirmed minimal schedule, 1 without one, 2 when the run cannot be shrunk."
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "shrink", help="shrink a failing run to the smallest schedule that fails", description=DESCRIPTION
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a failing scenario's run directory")
    p.add_argument("--budget", default="30m", help="wall-clock time for the whole shrink (default 30m)")
    p.add_argument("--first", default="1/1", help="K/N runs that must fail while searching (default 1/1)")
    p.add_argument(
        "--confirm", default="2/3", help="K/N runs that must fail to confirm the result (default 2/3)"
    )
    p.add_argument(
        "--lock", type=Path, default=None, help="a lock file held (flock) around each run, to share a machine"
    )
    p.set_defaults(func=cmd_shrink)


def cmd_shrink(args: argparse.Namespace) -> int:
    from harness.shrink.candidate import ShrinkError, read_origin
    from harness.shrink.oracle import Quota
    from harness.shrink.search import Shrink

    try:
        budget = parse_duration(args.budget)
        first, confirm = Quota.parse(args.first, "--first"), Quota.parse(args.confirm, "--confirm")
        origin = read_origin(Path(args.run_dir))
    except (ValueError, ShrinkError) as e:
        print(f"solar-chaos shrink: {e}", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = Shrink(origin, budget, first, confirm, say, args.lock).run()
    for note in result.notes:
        print(f"note: {note}")
    if result.minimal is None:
        print(
            f"no schedule confirmed {confirm} within {args.budget} ({result.runs} runs); "
            f"see {origin.run_dir}/shrink/shrink.jsonl"
        )
        return 1
    print(
        f"minimal: {result.minimal.describe()} (from {result.original.describe()}), "
        f"{result.candidates} candidates, {result.runs} runs"
    )
    print(f"  {result.minimal_file}")
    if result.minimal_report:
        print(f"  {result.minimal_report}")
    return 0


def shrink_failed(run_dir: Path, budget_s: float, lock: Path | None = None) -> str:
    """pytest --shrink: shrink a failing item's run directory within `budget_s`, with the defaults of the
    command; the lines its failure message gains (never raises: a run that cannot be shrunk says why)."""
    from harness.shrink.candidate import ShrinkError, read_origin
    from harness.shrink.oracle import Quota
    from harness.shrink.search import Shrink

    try:
        origin = read_origin(run_dir)
    except ShrinkError as e:
        return f"not shrunk: {e}"
    result = Shrink(origin, budget_s, Quota(1, 1), Quota(2, 3), lambda line: None, lock).run()
    if result.minimal is None:
        return f"not shrunk within the budget ({result.runs} runs): {'; '.join(result.notes)}"
    return (
        f"shrunk to {result.minimal.describe()} (from {result.original.describe()}) in {result.runs} runs: "
        f"{result.minimal_file}"
    )
