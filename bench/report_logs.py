"""Seconds the report's log scan (harness/report/logs.py) takes over many log lines and many faults.

  python bench/report_logs.py [--lines 100000] [--faults 1000] [--nodes 4] [--repeat 3]

Writes a run directory's logs/ by hand: `--lines` netsync-style JSON lines spread over `--nodes`
containers and 1,000 s, a few carrying a cid; then asks scan() for 20 cids and for the windows the
report asks for (1 s before to 2 s after each fault's start and stop, each fault on one node), as
page.py does. `--together`: every fault starts at the same moment, on every node, in the middle of
the lines (the worst case for a scan that looks at each window per line). Prints the best of
`--repeat` runs, and what the scan kept, as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.report.logs import scan  # noqa: E402

T0 = 1_800_000_000.0
SPAN_S = 1000.0


def write_logs(run_dir: Path, lines: int, nodes: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    logs = run_dir / "logs"
    logs.mkdir(parents=True)
    cids = [f"cid-{i}" for i in range(20)]
    per_node = lines // nodes
    for n in range(nodes):
        with open(logs / f"agent-{n + 1}.log", "w") as f:
            for i in range(per_node):
                line = {"t": T0 + SPAN_S * i / per_node, "level": "info", "msg": "forwarded"}
                if rng.random() < 0.001:
                    line["cid"] = rng.choice(cids)
                f.write(json.dumps(line) + "\n")
    return cids


def windows(
    faults: int, nodes: int, seed: int, together: bool = False
) -> list[tuple[float, float, frozenset[str] | None]]:
    rng = random.Random(seed)
    out: list[tuple[float, float, frozenset[str] | None]] = []
    if together:
        return [(SPAN_S / 2 - 1.0, SPAN_S / 2 + 2.0, None)] * faults
    for _ in range(faults):
        start = rng.uniform(0, SPAN_S)
        stop = start + rng.uniform(1, 30)
        node = frozenset({f"agent-{rng.randrange(nodes) + 1}"})
        out += [(start - 1.0, start + 2.0, node), (stop - 1.0, stop + 2.0, node)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--faults", type=int, default=1000)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--together", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        cids = write_logs(run_dir, args.lines, args.nodes, args.seed)
        wins = windows(args.faults, args.nodes, args.seed, args.together)
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            found = scan(run_dir, cids, wins, T0)
            best = min(best, time.perf_counter() - t0)
        by_window = found.by_window
        kept = by_window.values() if isinstance(by_window, dict) else by_window
        print(
            json.dumps(
                {
                    "lines": args.lines,
                    "faults": args.faults,
                    "together": args.together,
                    "windows": len(wins),
                    "seconds": round(best, 3),
                    "window_lines": sum(len(v) for v in kept),
                    "cid_lines": sum(len(v) for v in found.by_cid.values()),
                }
            )
        )


if __name__ == "__main__":
    main()
