"""Profiling a netsync agent under bench/netsync_throughput.py's load: with py-spy when it can
attach (ptrace), else by restarting the agent under cProfile (bench/cprofile_agent.py); each
profiler's output summarised per function and package, and the summary as text."""

from __future__ import annotations

import asyncio
import json
import math
import pstats
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.throughput_cluster import Clusters, measure_rate, process_pids
from bench.throughput_stats import summarise
from harness.paths import ROOT
from tests.integration.netsync_procs import Cluster, NatsServer, SurrealServer

PROFILED_AGENT = "agent-1"
PYSPY_RATE_HZ = 100


def pyspy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, where `make bench` installs it
    return str(beside) if beside.exists() else shutil.which("py-spy")


def pyspy_can_attach(binary: str, pid: int) -> tuple[bool, str]:
    """Whether py-spy can read `pid` here (it needs ptrace); the reason when not."""
    try:
        done = subprocess.run([binary, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, repr(e)
    return done.returncode == 0, (done.stderr or done.stdout).strip()[-500:]


# Leaves where a thread waits rather than works. py-spy drops samples of threads it sees
# idle, yet a thread woken from epoll_wait but not yet given a core (two busy cores) still
# shows there; those samples say "waiting for the CPU or for I/O", not "this code is hot".
WAIT_LEAVES = (
    "EpollIOManager.get_events (trio/_core/_io_epoll.py",
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
)


# The outermost frame of a whole stack: the agent's main thread or a worker thread.
STACK_ROOTS = ("_run_module_as_main (", "Thread._bootstrap (threading.py")


def summarise_pyspy(raw: Path, duration: float, top: int = 25) -> dict[str, Any]:
    """Self and inclusive samples per function from py-spy's raw (collapsed stack) output:
    one line per distinct stack, `frame;frame;...;leaf COUNT`, each frame
    `function (file:line)`, the line being the function's first (`--function`).
    Percentages are of the working samples: stacks whose leaf is not a wait point."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    total = whole = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        leaf = frames[-1]
        if leaf.startswith(WAIT_LEAVES):
            waiting[leaf] += n
            continue
        total += n
        whole += n if frames[0].startswith(STACK_ROOTS) else 0
        self_counts[leaf] += n
        for frame in set(frames):  # a recursive function counts once per stack
            incl_counts[frame] += n
        by_package[package_of(leaf)] += n

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": f, "samples": n, "percent": round(100 * n / total, 1) if total else 0.0}
            for f, n in counter.most_common(top)
        ]

    return {
        "working_samples": total,
        "waiting_samples": sum(waiting.values()),
        "whole_stack_share": round(whole / total, 2) if total else None,
        "waiting": dict(waiting.most_common()),
        # At PYSPY_RATE_HZ per thread, working samples/(rate*duration) is roughly the share
        # of one core the agent's Python code kept busy.
        "busy_share_of_one_core": round(total / (PYSPY_RATE_HZ * duration), 2) if duration else None,
        "self": rows(self_counts),
        "inclusive": rows(incl_counts),
        "self_by_package": rows(by_package),
    }


def package_of(frame: str) -> str:
    """`read (libp2p/stream_muxer/yamux/yamux.py:123)` -> `libp2p`; stdlib files by module."""
    where = frame.rpartition("(")[2].rstrip(")")
    path = where.rpartition(":")[0]
    parts = Path(path).parts
    return parts[0] if len(parts) > 1 else (Path(path).stem or "?")


def summarise_cprofile(stats_file: Path, top: int = 25) -> dict[str, Any]:
    """Self (tottime) and inclusive (cumtime) seconds per function from a pstats dump,
    self as percentages of the main thread's working time (its self time less the time
    blocked in epoll, which is idle), inclusive of all its time. cProfile sees only the
    main thread (trio's), not the worker threads, counts each resumption of a coroutine
    as a call, and covers the agent's whole life, start-up included."""
    stats = pstats.Stats(str(stats_file))
    entries = stats.stats  # type: ignore[attr-defined]
    idle = sum(v[2] for k, v in entries.items() if "of 'select.epoll' objects" in k[2])
    work = (sum(v[2] for v in entries.values()) - idle) or 1.0

    def name(key: tuple[str, int, str]) -> str:
        file, line, func = key
        return f"{func} ({short_path(file)}:{line})"

    def rows(index: int, of: float) -> list[dict[str, Any]]:
        ordered = sorted(
            ((k, v) for k, v in entries.items() if "of 'select.epoll' objects" not in k[2]),
            key=lambda kv: kv[1][index],
            reverse=True,
        )[:top]
        return [
            {"function": name(k), "seconds": round(v[index], 3), "percent": round(100 * v[index] / of, 1)}
            for k, v in ordered
        ]

    return {
        "working_seconds": round(work, 2),
        "epoll_idle_seconds": round(idle, 2),
        "self": rows(2, work),
        # The loop's callers hold the idle epoll time too, so inclusive shares are of it all.
        "inclusive": rows(3, work + idle),
    }


def short_path(file: str) -> str:
    """A site-packages or checkout path from its package on, as py-spy shortens them."""
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in file:
            rest = file.split(marker, 1)[1]
            return rest.split("/", 1)[1] if marker == "/lib/python3" and "/" in rest else rest
    return file


def profile_text(profile: dict[str, Any]) -> str:
    lines = [
        f"netsync agent profile: {profile['profiler']} on {profile['agent']} (pid {profile['pid']}), "
        f"{profile['seconds']:g} s at {profile['rate']:g} intents/s offered to the cluster",
        f"date {profile['date']}, load average {profile['load_average']}",
    ]
    s = profile["summary"]
    if profile["profiler"] == "py-spy":
        lines.append(
            f"{s['working_samples']} working samples at {PYSPY_RATE_HZ} Hz "
            f"(~{s['busy_share_of_one_core']:.0%} of one core busy in Python); "
            f"{s['waiting_samples']} more in wait points {list(s['waiting'])}, left out below"
        )
        lines.append(
            f"{s['whole_stack_share']:.0%} of the working stacks are whole (the rest were torn by "
            "--nonblocking sampling: inclusive shares are understated by that much)"
        )
        unit = "samples"
    else:
        lines.append(
            f"{s['working_seconds']} s of work in the main thread "
            f"({s['epoll_idle_seconds']} s blocked in epoll left out; percentages are of the work)"
        )
        unit = "seconds"
    for title, key in (
        ("self (leaf) by package", "self_by_package"),
        ("self (leaf)", "self"),
        ("inclusive", "inclusive"),
    ):
        if key not in s:
            continue
        lines += ["", f"-- top {title} --", f"{'%':>6} {unit:>8}  function (file:line)"]
        lines += [f"{r['percent']:>6.1f} {r[unit]:>8}  {r['function']}" for r in s[key]]
    if not profile["run"]["budget"]["holds"]:
        # Near the edge the system may tip over during the profile run: then the profile
        # shows the collapse (redials, timeouts), not the steady hot path.
        lines.insert(
            2, "NOTE: the profiled run broke its budget: " + "; ".join(profile["run"]["budget"]["why"])
        )
    lines += ["", "run info:", json.dumps(profile["run"], indent=1)]
    return "\n".join(lines) + "\n"


def choose_profiler(choice: str, pid: int) -> tuple[str, str | None]:
    """ "py-spy" or "cprofile" (for `--profiler auto|py-spy|cprofile`), and why py-spy
    was not used when it was not."""
    if choice == "cprofile":
        return "cprofile", "--profiler cprofile"
    binary = pyspy_binary()
    if binary is None:
        why = "py-spy is not installed (.venv/bin/pip install py-spy)"
    else:
        ok, why = pyspy_can_attach(binary, pid)
        if ok:
            return "py-spy", None
    if choice == "py-spy":
        raise SystemExit(f"--profiler py-spy, but it cannot be used: {why}")
    return "cprofile", why


async def profile_with_pyspy(
    cluster: Cluster,
    nats_url: str,
    rate: float,
    seconds: float,
    stem: Path,
    pids: dict[str, int],
    blocking: bool = False,
) -> dict[str, Any]:
    """py-spy records agent-1 for `seconds` while the cluster takes `rate`."""
    binary, pid = pyspy_binary(), cluster.agents[PROFILED_AGENT].pid
    assert binary is not None and pid is not None
    raw = stem.with_name(f"{stem.name}-profile-agent-1.pyspy.txt")
    cmd = [binary, "record", "--pid", str(pid), "--duration", str(math.ceil(seconds))]
    # raw: collapsed stacks we can summarise ourselves; --function: a frame is its
    # function's first line, so the samples of one function add up.
    cmd += ["--rate", str(PYSPY_RATE_HZ), "--format", "raw", "--function", "-o", str(raw)]
    if not blocking:
        # Never pause the agent to sample it: near the breaking point an 80 ms deadline has
        # little slack, and 100 pauses a second tipped profiled runs over. The price is torn
        # stacks (frames read while they change): self shares stay sound, inclusive ones
        # are understated; the summary says how many stacks were whole.
        cmd += ["--nonblocking"]
    spy = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await asyncio.sleep(0.3)  # attached before the first request: the window is all load
        # One second more load than recording, so the recording never sees the tail-off.
        run = await measure_rate(cluster, nats_url, rate, seconds + 1, "bench-prof", pids)
        _, err = await asyncio.wait_for(spy.communicate(), timeout=seconds + 60)
    finally:
        if spy.returncode is None:
            spy.kill()
            await spy.wait()
    if spy.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-500:]}")
    return {"pid": pid, "output": str(raw), "summary": summarise_pyspy(raw, seconds), "run": summarise(run)}


def profile_with_cprofile(
    clusters: Clusters,
    nats_server: NatsServer,
    surreal: SurrealServer | None,
    rate: float,
    seconds: float,
    stem: Path,
) -> dict[str, Any]:
    """A fresh cluster whose agent-1 runs under cProfile (bench/cprofile_agent.py), loaded
    at `rate`; agent-1 is then stopped with SIGTERM, on which the wrapper dumps its stats."""
    stats_file = stem.with_name(f"{stem.name}-profile-agent-1.pstats")
    stats_file.unlink(missing_ok=True)

    def under_cprofile(cluster: Cluster) -> None:
        agent = cluster.agents[PROFILED_AGENT]
        agent.env["NETSYNC_BENCH_PROFILE_OUT"] = str(stats_file)
        wrapper = [sys.executable, str(Path(__file__).with_name("cprofile_agent.py"))]
        agent.command = lambda: wrapper  # type: ignore[method-assign]

    cluster = clusters.start("agent-1 under cProfile", under_cprofile)
    agent = cluster.agents[PROFILED_AGENT]
    pid = agent.pid
    pids = process_pids(cluster, nats_server, surreal)
    run = asyncio.run(measure_rate(cluster, nats_server.url, rate, seconds, "bench-cprof", pids))
    agent.terminate(timeout=30)
    if not stats_file.exists():
        raise RuntimeError(f"cProfile wrote no stats; agent-1's stderr:\n{agent.stderr()[-2000:]}")
    return {
        "pid": pid,
        "output": str(stats_file),
        "summary": summarise_cprofile(stats_file),
        "run": summarise(run),
    }
