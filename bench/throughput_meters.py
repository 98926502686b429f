"""What a bench run spent and ran: each process's CPU share and the machine's (CpuMeter), resident
memory and open file descriptors (process_memory), the load average, and which netsync source was
measured (source_state). Read from /proc and git; part of bench/netsync_throughput.py, also used by
the other benches built on it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.paths import ROOT


class CpuMeter:
    """CPU time of a set of processes from /proc, so the report says where the two cores
    went (100 % = one core), and of the whole machine, so it says how much went to
    others: the load this bench cannot control. Linux only; elsewhere it reports nothing."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start_wall = time.monotonic()
        self.start = {name: self._ticks(pid) for name, pid in pids.items()}
        self.start_machine = self._machine_ticks()

    @staticmethod
    def _machine_ticks() -> int | None:
        """Busy ticks of all cores: everything in /proc/stat's cpu line but idle and iowait."""
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        return sum(fields) - fields[3] - fields[4]

    @staticmethod
    def _ticks(pid: int) -> int | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # Fields after the command name (which may hold spaces): utime, stime are 14th, 15th.
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def percent(self) -> dict[str, float]:
        wall = time.monotonic() - self.start_wall
        out = {}
        for name, pid in self.pids.items():
            now, then = self._ticks(pid), self.start[name]
            if now is not None and then is not None and wall > 0:
                out[name] = round((now - then) / self.tick / wall * 100, 1)
        machine_now = self._machine_ticks()
        if machine_now is not None and self.start_machine is not None and wall > 0:
            out["machine"] = round((machine_now - self.start_machine) / self.tick / wall * 100, 1)
            ours = sum(v for k, v in out.items() if k != "machine")
            out["others"] = round(max(0.0, out["machine"] - ours), 1)
        return out


def process_memory(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """Resident memory (MiB) and open file descriptors of each process, from /proc: a
    leak of connections, streams or remembered answers shows as growth across rates."""
    out = {}
    for name, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration, ValueError):
            continue
        out[name] = {"rss_mib": round(rss_kb / 1024, 1), "fds": fds}
    return out


def source_state() -> dict[str, Any]:
    """Which netsync was measured: the commit, the files of netsync/ changed from it, and
    a hash of netsync/'s sources as they are (the processes run the working tree)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "netsync").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    state: dict[str, Any] = {"netsync_sha256": digest.hexdigest()[:16]}
    try:
        git = ["git", "-C", str(ROOT)]
        state["commit"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "netsync"], capture_output=True, text=True, timeout=10
        ).stdout
        state["netsync_changed_files"] = [line[3:] for line in changed.splitlines()]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return state


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
