"""`solar-chaos run` as a child process, for the tools that judge many runs (make mutation, shrink): its
output kept in files beside its run directories, a deadline after which it gets SIGTERM (the harness
then heals its faults and removes its containers) and, past a grace, SIGKILL; its verdict read back."""

from __future__ import annotations

import contextlib
import fcntl
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.paths import ROOT

STOP_GRACE_S = 90  # after SIGTERM, the harness heals its faults and removes its containers


@dataclass(frozen=True)
class ChildRun:
    rc: int | None  # None: stopped at its deadline
    seconds: float
    verdict: dict[str, Any] | None  # the newest verdict.json under `reports`, if any was written
    run_dir: Path | None  # that verdict's run directory
    stderr_tail: str  # the last lines the child wrote on stderr


def run_cli(args: list[str], reports: Path, timeout_s: float) -> ChildRun:
    """`python -m harness.cli run ARGS --reports REPORTS` from the checkout, within `timeout_s`."""
    reports.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "harness.cli", "run", *args, "--reports", str(reports)]
    t0 = time.monotonic()
    with open(reports / "stdout.txt", "w") as out, open(reports / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            rc: int | None = proc.wait(timeout=max(timeout_s, 1))
        except subprocess.TimeoutExpired:
            rc = None
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    seconds = time.monotonic() - t0
    verdicts = sorted(reports.glob("*/*/verdict.json"))
    verdict = json.loads(verdicts[-1].read_text()) if verdicts else None
    tail = "\n".join((reports / "stderr.txt").read_text(errors="replace").splitlines()[-8:])
    return ChildRun(rc, seconds, verdict, verdicts[-1].parent if verdicts else None, tail)


@contextlib.contextmanager
def held(lock: Path | None) -> Iterator[None]:
    """An exclusive flock on `lock` for the block (none when None): the heavy work of a shared machine,
    one at a time."""
    if lock is None:
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
