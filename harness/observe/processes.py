"""Processes seen from outside: the resident memory and open file descriptors of a container's main
process (SurrealDB and NATS serve no such metric of their own), and of the harness itself.

Read from /proc when the engine runs on this host and the pid it reports is that container's (its
cgroup names the container id), which costs microseconds; otherwise from the engine's one-shot stats
(memory only, about a second a call, so at most every STATS_EVERY seconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from harness.topology.docker import in_container
from harness.topology.system import System

PROC = Path("/proc")
STATS_EVERY = 10.0


def proc_sample(pid: int | str) -> dict[str, int] | None:
    """VmRSS, the count of open fds and the start time (clock ticks after boot: it tells one
    incarnation from the next) of a process; None when it is gone or not readable."""
    base = PROC / str(pid)
    try:
        status = (base / "status").read_text()
        fds = len(os.listdir(base / "fd"))
        stat = (base / "stat").read_text()
    except OSError:
        return None
    # stat: "pid (comm) state ppid ...": starttime is the 22nd field, the 20th after comm's ")"
    started = int(stat[stat.rindex(")") + 2 :].split()[19])
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return {"rss_bytes": int(line.split()[1]) * 1024, "open_fds": fds, "started": started}
    return None


def harness_sample() -> dict[str, int] | None:
    """The harness's own process: its memory must stay flat over a soak (streaming, downsampling)."""
    return proc_sample("self")


class ContainerProcesses:
    """The main process of each named container of a run, found again after a restart."""

    def __init__(self, sut: System) -> None:
        self.sut = sut
        self._pid: dict[str, int] = {}
        self._stats_at: dict[str, float] = {}

    def _host_pid(self, name: str) -> int | None:
        try:
            ctr = self.sut.run.raw(name)
            ctr.reload()
        except Exception:
            return None
        pid = int(ctr.attrs.get("State", {}).get("Pid") or 0)
        if pid <= 0:
            return None
        if not in_container(pid, ctr.id):
            return None
        return pid

    def sample(self, name: str) -> dict[str, int] | None:
        """Blocking (docker API calls): run it in a worker thread."""
        pid = self._pid.get(name)
        got = proc_sample(pid) if pid else None
        if got is None:
            pid = self._host_pid(name)
            if pid is not None:
                self._pid[name] = pid
                got = proc_sample(pid)
        if got is not None:
            return got
        return self._engine_stats(name)

    def _engine_stats(self, name: str) -> dict[str, int] | None:
        now = time.monotonic()
        if now - self._stats_at.get(name, -STATS_EVERY) < STATS_EVERY:
            return None
        self._stats_at[name] = now
        try:
            stats: dict[str, Any] = self.sut.run.raw(name).stats(stream=False, one_shot=True)
        except Exception:
            return None
        mem = stats.get("memory_stats") or {}
        usage = mem.get("usage")
        if not isinstance(usage, int):
            return None
        inner = mem.get("stats") or {}
        cache = inner.get("inactive_file", inner.get("total_inactive_file", 0))
        return {"rss_bytes": max(0, usage - int(cache or 0))}
