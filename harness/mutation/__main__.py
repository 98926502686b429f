"""`python -m harness.mutation`: draw mutants of netsync from a seed and judge each (docs/mutation.md)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from harness.errors import HarnessError

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>s|m|h)$")


def duration(text: str) -> float:
    """`90s`, `25m`, `2h` in seconds; anything else an argparse error naming the forms."""
    m = _DURATION.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use 90s, 25m or 2h")
    return float(m["n"]) * {"s": 1, "m": 60, "h": 3600}[m["unit"]]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.mutation", description=__doc__)
    p.add_argument("--n", type=int, default=10, help="how many mutants to draw (default 10)")
    p.add_argument("--seed", type=int, default=1, help="the seed of the draw (default 1)")
    p.add_argument("--budget", type=duration, default=duration("30m"), help="no mutant starts past it (30m)")
    p.add_argument("--mutant-timeout", type=duration, default=duration("5m"), help="one mutant's runs (5m)")
    p.add_argument("--files", nargs="+", default=None, help="netsync files of docs/mutation.md's map (all)")
    p.add_argument(
        "--reports", type=Path, default=None, help="parent of the run directory (reports/mutation)"
    )
    p.add_argument(
        "--lock", type=Path, default=None, help="a lock file held around each mutant's Docker work"
    )
    p.add_argument("--dry-run", action="store_true", help="draw and print the mutants, run nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    from harness.mutation import mutants, run, table
    from harness.paths import ROOT, reports_dir

    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.n < 1:
        parser().error("--n: at least 1 mutant")

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        guards = table.choose(table.read_map(), args.files)
        drawn, skipped = mutants.sample(
            mutants.read_sources(ROOT, [g.file for g in guards]), args.n, args.seed
        )
    except HarnessError as e:
        print(f"mutation: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for d in drawn:
            print(d.mutant.key)
            print(d.diff)
        return 0
    out = (args.reports or reports_dir() / "mutation") / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{args.seed}"
    opts = run.Options(
        args.n,
        args.seed,
        args.budget,
        args.mutant_timeout,
        args.files or [],
        out,
        args.lock,
        run.command_line(argv),
    )
    summary = run.run(drawn, guards, skipped, opts, say)
    print(
        f"mutation score {summary['score']}: killed {summary['killed']}, survived {summary['survived']}, "
        f"timed out {summary['timed-out']}, error {summary['error']}; {out}/summary.md"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
