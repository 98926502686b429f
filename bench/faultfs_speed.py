"""What faultfs costs a writer: MB/s of 4 KiB writes with an fsync every N writes, through a
faultfs mount and straight into its backing directory.

  python bench/faultfs_speed.py [--mb 16] [--block 4096] [--sync-every 1 16 256] [--repeat 3]
                                [--dir /tmp] [--json]

For each N in --sync-every, writes --mb MB in --block byte writes to a new file, fsyncs every N
writes and once at the end, then deletes the file; direct and faultfs alternate --repeat times
so a change in the machine's load falls on both alike; the figure is the median. N = 1 is
JetStream's `sync_interval: always`, a large N its default (fsync every 2 min). The backing
directory lives in --dir, the same file system as the direct run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.faultfs.control import FaultFS  # noqa: E402


def run(folder: str, total: int, block: int, every: int) -> float:
    """MB/s of one file written in `block` writes with an fsync every `every` writes."""
    data = os.urandom(block)
    path = os.path.join(folder, "bench.dat")
    n = total // block
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(1, n + 1):
            os.write(fd, data)
            if i % every == 0:
                os.fsync(fd)
        os.fsync(fd)
    finally:
        os.close(fd)
    took = time.perf_counter() - t
    os.unlink(path)
    return n * block / took / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=16)
    p.add_argument("--block", type=int, default=4096)
    p.add_argument("--sync-every", type=int, nargs="+", default=[1, 16, 256])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    total = int(a.mb * 1e6)
    rows = []
    with tempfile.TemporaryDirectory(dir=a.dir, prefix="faultfs-bench-") as base:
        direct, backing, mnt = (os.path.join(base, x) for x in ("direct", "backing", "mnt"))
        os.mkdir(direct)
        with FaultFS.mount(backing, mnt, run_id="bench") as fs:
            for every in a.sync_every:
                got: dict[str, list[float]] = {"direct": [], "faultfs": []}
                for _ in range(a.repeat):
                    got["direct"].append(run(direct, total, a.block, every))
                    got["faultfs"].append(run(fs.mountpoint, total, a.block, every))
                d, f = (statistics.median(got[k]) for k in ("direct", "faultfs"))
                rows.append({"sync_every": every, "direct_mb_s": d, "faultfs_mb_s": f, "ratio": d / f, **got})
    if a.json:
        print(json.dumps({"mb": a.mb, "block": a.block, "repeat": a.repeat, "rows": rows}, indent=1))
        return 0
    print(f"{a.mb:g} MB in {a.block} B writes, median of {a.repeat}, under {a.dir}")
    print("| fsync every | direct MB/s | faultfs MB/s | direct / faultfs |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['sync_every']} | {r['direct_mb_s']:.1f} | {r['faultfs_mb_s']:.1f} | {r['ratio']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
