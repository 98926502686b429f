"""How late the nemesis applies its faults: `t` - `scheduled` of every start line in history.jsonl.

  python bench/fault_lateness.py [FOLDER ...] [--worst 10] [--json]

Each FOLDER (default reports/) is searched for history.jsonl files (a run directory, a run, or the
whole reports folder). A nemesis start line carries `t`, when the fault took effect, and
`scheduled`, when the schedule asked for it (docs/run-format.md); lines without `scheduled` are
skipped. Prints count, p50, p99 and max of the lateness in ms per fault kind and overall
(nearest-rank percentiles), then the `--worst` latest faults with their run directory. The goal
(issue 17): p99 under 50 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.paths import reports_dir  # noqa: E402

GOAL_P99_MS = 50.0
ALL = "overall"


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def lateness(history: Path) -> list[tuple[str, str, float]]:
    """(fault kind, fault id, lateness in ms) of every start line with `scheduled`."""
    found = []
    with history.open(encoding="utf-8") as f:
        for line in f:
            if '"nemesis"' not in line:  # client lines are most of the file: skip them unparsed
                continue
            e = json.loads(line)
            if e.get("process") == "nemesis" and e.get("f") == "start" and e.get("scheduled") is not None:
                found.append((e["fault"], e["fault_id"], (e["t"] - e["scheduled"]) * 1000))
    return found


def histories(folders: list[Path]) -> list[Path]:
    found: set[Path] = set()
    for folder in folders:
        if folder.is_file():
            found.add(folder)
        else:
            found.update(folder.rglob("history.jsonl"))
    return sorted(found)


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {
        "count": len(s),
        "p50_ms": round(percentile(s, 0.50), 1),
        "p99_ms": round(percentile(s, 0.99), 1),
        "max_ms": round(s[-1], 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", type=Path, help="run directories or folders holding them")
    ap.add_argument("--worst", type=int, default=10, help="list the N latest faults (0: none)")
    ap.add_argument("--json", action="store_true", help="print the table as JSON")
    args = ap.parse_args(argv)
    files = histories(args.folders or [reports_dir()])
    by_kind: defaultdict[str, list[float]] = defaultdict(list)
    every: list[tuple[float, str, str, Path]] = []
    for history in files:
        for kind, fault_id, ms in lateness(history):
            by_kind[kind].append(ms)
            by_kind[ALL].append(ms)
            every.append((ms, kind, fault_id, history.parent))
    if not every:
        print(f"no nemesis start line with `scheduled` in {len(files)} history files", file=sys.stderr)
        return 1
    table = {kind: summary(v) for kind, v in sorted(by_kind.items()) if kind != ALL}
    table[ALL] = summary(by_kind[ALL])
    if args.json:
        print(json.dumps({"histories": len(files), "lateness": table}, indent=2))
        return 0
    print(f"fault lateness (t - scheduled), {len(files)} history files")
    print(f"{'kind':<12} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, s in table.items():
        print(f"{kind:<12} {s['count']:>6} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f}")
    verdict = "meets" if table[ALL]["p99_ms"] < GOAL_P99_MS else "misses"
    print(f"overall p99 {table[ALL]['p99_ms']:.1f} ms {verdict} the goal (< {GOAL_P99_MS:g} ms)")
    if args.worst:
        print(f"\nthe {min(args.worst, len(every))} latest:")
        for ms, kind, fault_id, run_dir in sorted(every, reverse=True)[: args.worst]:
            print(f"  {ms:8.1f} ms  {kind:<10} {fault_id:<5} {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
