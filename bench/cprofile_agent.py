"""Run one netsync agent under cProfile: the profiler fallback of bench/netsync_throughput.py
for when py-spy cannot attach to a process (no ptrace in the sandbox).

Started in place of `python -m netsync agent`, configured by the same environment plus
NETSYNC_BENCH_PROFILE_OUT (where the pstats file goes). The stats are dumped when the
agent returns, which it does on SIGTERM (the agent handles the signal itself and stops
cleanly). A SIGTERM arriving outside the agent's own signal handling, say while it is
still starting, is turned into SystemExit so the dump still happens.

netsync/ is not touched: this only wraps `netsync.agent.main()`.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    out = os.environ["NETSYNC_BENCH_PROFILE_OUT"]
    signal.signal(signal.SIGTERM, _exit_on_term)
    # Imported before profiling starts: the import time is not the hot path we are after.
    from netsync.agent import main as agent_main

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return agent_main()
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    sys.exit(main())
