"""What faultfs costs netsync's journal: appends per second to a PendingCommitBuffer (each one written and
fsynced, as before a 202) and completions (written, not fsynced), in a directory straight on the host's file
system and in a faultfs mount over the same file system.

  python bench/faultfs_journal.py [--entries 2000] [--repeat 3] [--dir /tmp] [--json]

Direct and faultfs alternate --repeat times; the figure is the median. No Docker: the buffer runs here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.faultfs.control import FaultFS  # noqa: E402
from netsync.buffer import Pending, PendingCommitBuffer  # noqa: E402


def run(folder: Path, entries: int) -> tuple[float, float]:
    """(appends/s, completions/s) of a fresh buffer in `folder`."""
    buf = PendingCommitBuffer(folder, entries + 1)
    now = time.time()
    batch = [Pending(f"c{i}", f"k{i % 16}", i, "agent-1", now, now, 1) for i in range(entries)]
    t = time.perf_counter()
    for e in batch:
        buf.append(e)
    appends = entries / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, e in enumerate(batch):
        buf.complete(e.cid, i + 1)
    completions = entries / (time.perf_counter() - t)
    buf.close()
    return appends, completions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {"direct": [], "faultfs": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as top:
        root = Path(top)
        with FaultFS.mount(root / "backing", root / "mnt", run_id="bench") as fs:
            for r in range(args.repeat):
                figures["direct"].append(run(root / f"direct-{r}", args.entries))
                figures["faultfs"].append(run(Path(fs.mountpoint) / f"j-{r}", args.entries))
    medians = {
        k: {
            "appends_per_s": round(statistics.median(a for a, _ in v)),
            "completions_per_s": round(statistics.median(c for _, c in v)),
        }
        for k, v in figures.items()
    }
    if args.json:
        print(json.dumps({"medians": medians, "runs": figures}))
        return
    for k, m in medians.items():
        print(
            f"{k:<8} {m['appends_per_s']:>7} appends/s (fsynced)  {m['completions_per_s']:>7} completions/s"
        )


if __name__ == "__main__":
    main()
