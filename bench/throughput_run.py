"""How a run of bench/netsync_throughput.py, or of a bench built on it, begins and ends: SIGTERM
taken as Ctrl-C, the report's path and the figures that describe the run (begin), a temporary
folder for the processes (work_folder), and the exit status, 130 on Ctrl-C (run)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from bench.throughput_cluster import CONTRACT_TIMEOUTS
from bench.throughput_meters import load_average, source_state

ROOT = Path(__file__).resolve().parents[1]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C, so every `with` kills what it started.
    raise KeyboardInterrupt


@contextlib.contextmanager
def work_folder(keep: bool) -> Iterator[Path]:
    """The processes' data and logs: a temporary folder, removed unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix="netsync-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"processes' folders and logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def begin(args: argparse.Namespace) -> tuple[Path, dt.datetime, dict[str, Any]]:
    """What a bench run sets up first: SIGTERM as Ctrl-C, the report's path, its start and the figures
    that describe the run (date, command, host, load, netsync's source, the agents' timeouts)."""
    signal.signal(signal.SIGTERM, _interrupt)
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_average_start": load_average(),
        "source": source_state(),
        "agent_env": CONTRACT_TIMEOUTS,
        "seconds_per_rate": args.seconds,
    }
    return out, started, meta


def run(entry: Callable[[], int]) -> None:
    """Exit with `entry`'s status; on Ctrl-C, 130, once the `with` blocks have killed what they started."""
    try:
        sys.exit(entry())
    except KeyboardInterrupt:
        print("interrupted: every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
