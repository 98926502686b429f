"""How long a pause takes to apply by each path: the engine's pause (dockerd, containerd, the shim, a runc
process) against a write to the container's cgroup freezer (harness/nemesis/freezer.py, what the nemesis
does with a local engine).

  python bench/pause_paths.py [--rounds 15]

Starts one NATS container from the project's image (built if missing), then, round after round, pauses it
through the engine and unpauses it, and freezes and thaws it through the freezer; prints the median and
max of each in ms. Each is timed until the kernel has every process stopped (the engine answers then; the
freezer is read back until it says so). Uses Docker: run it under the heavy-job lock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import engine  # noqa: E402
from harness.images import Images  # noqa: E402
from harness.nemesis.freezer import Freezer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    images = Images()
    images.ensure(("nats",))
    ctr = engine.client().containers.run(
        images.ref("nats"), ["-js"], detach=True, labels=engine.run_labels(engine.new_run_id())
    )
    try:
        time.sleep(1)
        ctr.reload()
        freezer = Freezer.of(ctr.attrs["State"]["Pid"])
        if freezer is None:
            print("no cgroup freezer reachable from here (a remote engine?): only the engine can pause")
            return 2
        by_engine, by_freezer = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            ctr.pause()
            by_engine.append((time.perf_counter() - t0) * 1000)
            assert freezer.frozen()
            ctr.unpause()
            time.sleep(0.05)
            t0 = time.perf_counter()
            freezer.freeze()
            by_freezer.append((time.perf_counter() - t0) * 1000)
            freezer.thaw()
            time.sleep(0.05)
        for name, ms in (("engine pause", by_engine), ("cgroup freezer", by_freezer)):
            mid, top = statistics.median(ms), max(ms)
            print(f"{name:<15} median {mid:6.2f} ms   max {top:6.2f} ms   ({args.rounds} rounds)")
    finally:
        ctr.remove(force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
