"""netsync throughput benchmark: how many intents per second the reference system takes
on this machine before its latency and loss budgets break.

    python bench/netsync_throughput.py [--rates 25,50,100,150,200,300] [--seconds 15]
                                       [--out reports/bench/netsync-throughput.json] [--profile]

Starts NATS (JetStream), SurrealDB, the orchestrator, three agents and the projector as
plain processes on 127.0.0.1 (tests/integration/netsync_procs.py's `Cluster`), with the
contract's DEFAULT agent timeouts (intent 80 ms, commit 400 ms), not the tests' generous
ones. For each rate it runs an open-loop load: request i is sent at t0 + i/rate whatever
happened to the earlier ones (so a slow system faces a growing queue, as it would in
production), to agents drawn by the harness's seeded plan (--seed), rate*seconds requests in all, each
bounded by a client timeout and the whole run by a deadline.

Per request it records the HTTP outcome, the agent's `quorum_ms` and the client's
invoke -> answer time. Intents answered 202 (pending-commit) are committed later by the
agent's replay; their invoke -> committed time is taken from the JetStream message's
store timestamp, read from the stream after the run (same host, same clock), so the
commit latency covers every decided intent, not only the lucky ones.

Budgets, per rate: intent p99 (quorum_ms) < 100 ms, commit p99 (invoke -> committed)
< 500 ms, and aborted + rejected + errors < 1 % of the requests.

`--profile` then loads agent-1 at the highest rate that held (the one just below the
breaking point) and profiles it: with py-spy when it can attach (install it into the venv
first: `.venv/bin/pip install py-spy`; `make bench` does), else by restarting agent-1
under cProfile (bench/cprofile_agent.py). The summary goes next to the JSON.

Everything it starts is killed when it ends, also on Ctrl-C or SIGTERM. Only loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import gc
import hashlib
import json
import math
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `tests.integration.netsync_procs`, `netsync` and `harness` import
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import nats  # noqa: E402
import nats.errors  # noqa: E402

from harness.load.ops import LoadPlan, connections, intents  # noqa: E402
from harness.load.sender import IntentSender, Reply  # noqa: E402
from harness.shape import STREAM  # noqa: E402
from tests.integration.netsync_procs import Cluster, NatsServer, SurrealServer  # noqa: E402

# The contract's defaults, spelled out: Cluster puts the tests' generous timeouts under
# whatever `env` we pass, so these must be passed explicitly to be the ones in force.
CONTRACT_TIMEOUTS = {"NETSYNC_INTENT_TIMEOUT_MS": "80", "NETSYNC_COMMIT_TIMEOUT_MS": "400"}

INTENT_P99_BUDGET_MS = 100.0
COMMIT_P99_BUDGET_MS = 500.0
FAILURE_BUDGET = 0.01  # aborted + rejected + errors, as a share of the requests

REQUEST_TIMEOUT_S = 5.0  # far above any budget: a request this slow is an error anyway
RUN_GRACE_S = REQUEST_TIMEOUT_S + 5.0  # after the last send, how long answers may take
SETTLE_TIMEOUT_S = 90.0  # buffers and projector caught up after a rate
MESH_TIMEOUT_S = 30.0  # agents reconnect within seconds (redial every 0.5-2 s) when they can
STATUS_OUTCOME = {200: "committed", 202: "pending-commit", 409: "aborted", 429: "rejected"}
OUTCOMES = ("committed", "pending-commit", "aborted", "rejected", "error")
PROFILED_AGENT = "agent-1"
# Per agent: enough connections that a slow answer never holds back the next send (open
# loop); past that, requests wait in the sender's queue, and the wait counts as latency.
# The sender and the seeded plan are the harness's (harness/load/), the ones scenarios use.
CONNECTIONS_PER_AGENT = 64
PYSPY_RATE_HZ = 100
OTHERS_NOTE_PERCENT = 20  # CPU (of 100 % per core) used by others that a break's "why" mentions


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Sample:
    """One request: when it was due, when it went out, what came back."""

    cid: str
    agent: str
    due: float  # loop time it was scheduled for
    sent: float  # loop time it actually went out
    sent_wall: float  # time.time() at send, to compare with the stream's store time
    answered: float | None = None
    status: int | None = None
    outcome: str = "error"
    quorum_ms: float | None = None
    error: str | None = None
    abort_reason: str | None = None
    stored_wall: float | None = None  # the JetStream store time, filled in after the run

    @property
    def latency_ms(self) -> float | None:
        return None if self.answered is None else (self.answered - self.sent) * 1000

    @property
    def commit_ms(self) -> float | None:
        """Invoke -> committed: the answer for a 200, the stream's store time for a 202
        committed later by replay, infinite for a 202 never seen in the stream."""
        if self.outcome == "committed":
            return self.latency_ms
        if self.outcome == "pending-commit":
            return math.inf if self.stored_wall is None else (self.stored_wall - self.sent_wall) * 1000
        return None


def abort_kind(reason: str) -> str:
    """The agent's abort reason without its cid-specific details, so reasons can be counted:
    "no quorum within 80 ms (1/2 agreed)" -> "no quorum in time"."""
    if reason.startswith("no quorum within"):
        return "no quorum in time"
    if "unreachable" in reason:
        return "peers unreachable (stream failed or connection dropped)"
    if "disagree" in reason or "outside" in reason:
        return "disagreed"
    return reason[:80] or "no reason given"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values. inf sorts last."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    """A latency for JSON: rounded, and null for none or for inf (never committed)."""
    if value is None or math.isinf(value):
        return None
    return round(value, 2)


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


# -- talking to the cluster --------------------------------------------------------------


async def healthz(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    r = await http.get(f"{url}/healthz", timeout=2.0)
    r.raise_for_status()
    return r.json()


async def stream_last_seq(nats_url: str) -> int:
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        return (await nc.jetstream(timeout=5).stream_info(STREAM)).state.last_seq
    finally:
        await nc.close()


async def stream_store_times(nats_url: str, after_seq: int, prefix: str) -> tuple[dict[str, float], int]:
    """{cid: store time} for our cids (those starting with `prefix`) stored after
    `after_seq`, and how many cids were stored more than once (exactly-once check)."""
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        last = (await js.stream_info(STREAM)).state.last_seq
        counts: Counter[str] = Counter()
        times: dict[str, float] = {}
        seqs = list(range(after_seq + 1, last + 1))
        for start in range(0, len(seqs), 64):  # 64 lookups at a time: thousands of messages
            msgs = await asyncio.gather(*(js.get_msg(STREAM, s) for s in seqs[start : start + 64]))
            for m in msgs:
                cid = json.loads(m.data)["cid"]
                if cid.startswith(prefix):
                    counts[cid] += 1
                    times.setdefault(cid, m.time.timestamp())
        return times, sum(1 for n in counts.values() if n > 1)
    finally:
        await nc.close()


async def settle(
    cluster: Cluster, nats_url: str, timeout: float, mesh: bool = True
) -> tuple[float | None, str]:
    """Wait until the system is back at rest: every pending-commit buffer empty, the
    projector caught up with the stream and, with `mesh`, every agent connected to all
    its peers and to the orchestrator, so one rate's backlog or damage does not load
    the next. The seconds it took (None when the deadline passed first) and the last
    thing seen."""
    t0 = time.monotonic()
    last = "nothing answered"
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() - t0 < timeout:
            try:
                last = await rest_state(http, cluster, nats_url, mesh)
                if not last:
                    return round(time.monotonic() - t0, 2), "at rest"
            except (httpx.HTTPError, OSError, nats.errors.Error, KeyError) as e:
                last = f"{type(e).__name__}: {e}"  # an overloaded node may not answer in time
            await asyncio.sleep(0.25)
    return None, last


async def rest_state(http: httpx.AsyncClient, cluster: Cluster, nats_url: str, mesh: bool) -> str:
    """What keeps the system from being at rest, or "" when nothing does."""
    problems = []
    for name in cluster.names:
        h = await healthz(http, cluster.url(name))
        missing = set(cluster.names) - {name} - set(h["peers_connected"])
        if mesh and missing:
            problems.append(f"{name} not connected to {', '.join(sorted(missing))}")
        if mesh and not h["orchestrator_connected"]:
            problems.append(f"{name} not connected to the orchestrator")
        if h["buffer_depth"]:
            problems.append(f"{name} buffer depth {h['buffer_depth']}")
    if cluster.projector is not None:
        last = await stream_last_seq(nats_url)
        seen = (await healthz(http, cluster.url("projector")))["last_seq"]
        if seen < last:
            problems.append(f"projector at seq {seen} of {last}")
    return "; ".join(problems)


def connection_denials(cluster: Cluster) -> int:
    """How many times the agents' libp2p refused a connection for its per-peer limit, so
    far (their stderr): the mark of connections that were dropped but still counted."""
    return sum(p.stderr().count("denied by connection limits") for p in cluster.agents.values())


@dataclass
class Run:
    """One rate's load and what came of it."""

    rate: float
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    started: float = 0.0
    planned: int = 0
    stream_dupes: int | None = None
    stream_stored: int | None = None
    settle_s: float | None = None
    settle_state: str = ""
    cluster: int = 1  # which cluster (they are numbered from 1) took this rate
    denials: int = 0  # libp2p connection-limit denials during this rate
    cpu: dict[str, float] = field(default_factory=dict)
    client_gc: dict[str, float] = field(default_factory=dict)
    memory_before: dict[str, dict[str, float]] = field(default_factory=dict)
    memory_after: dict[str, dict[str, float]] = field(default_factory=dict)
    load_before: list[float] | None = None
    load_after: list[float] | None = None


class GcPauses:
    """The load client's own garbage-collection pauses while it sends. A pause stops the
    sending; afterwards every overdue request goes out at once, a burst the system
    never asked for. Reported so a run can tell the client's stalls from the system's."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif info.get("generation") == 2:
            self.durations.append(time.perf_counter() - self._started)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, float]:
        d = self.durations
        return {
            "full_collections": len(d),
            "max_ms": round(max(d) * 1000, 1) if d else 0.0,
            "total_ms": round(sum(d) * 1000, 1),
        }


def record_answer(sample: Sample, status: int, payload: bytes, at: float) -> None:
    sample.answered = at
    sample.status = status
    sample.outcome = STATUS_OUTCOME.get(status, "error")
    if sample.outcome == "error":
        sample.error = f"HTTP {status}"
        return
    answer = json.loads(payload)
    sample.quorum_ms = answer.get("quorum_ms")
    if sample.outcome == "aborted":
        sample.abort_reason = abort_kind(str(answer.get("reason", "")))


def _answer(sample: Sample, process: str, reply: Reply) -> None:
    """The sender's reply into the sample: an answer, or the error's name."""
    if reply.status is None:
        sample.error = (reply.error or "error").split(":", 1)[0]
        return
    try:
        record_answer(sample, reply.status, reply.payload, reply.at)
    except ValueError:  # an answer whose body is not JSON
        sample.error = "ValueError"


def _sent(process: str) -> None:
    return None  # a sample's send time is when it was queued: the wait for a connection is latency


def load_plan(rate: float, seconds: float, agents: int, seed: int = 0) -> LoadPlan:
    """The seeded plan one rate sends (open_loop), also read again to count what each agent was due."""
    return LoadPlan(
        rate=rate,
        duration=seconds,
        keys=16,
        clients=CONNECTIONS_PER_AGENT * agents,
        timeout=REQUEST_TIMEOUT_S,
        seed=seed,
    )


async def open_loop(cluster: Cluster, rate: float, seconds: float, tag: str, run: Run, seed: int = 0) -> None:
    """Send rate*seconds intents at t0 + i/rate without waiting for answers (open loop), from the
    harness's seeded plan (harness/load/ops.py: the same seed, the same agents, keys and values) over
    its queue-fed sender (harness/load/sender.py, CONNECTIONS_PER_AGENT connections per agent); then
    wait for the answers, at most RUN_GRACE_S. A request's latency counts from when the client queued
    it, so time spent waiting for a free connection is in it."""
    loop = asyncio.get_running_loop()
    plan = load_plan(rate, seconds, len(cluster.names), seed)
    senders = {
        name: IntentSender(cluster.url(name), processes, REQUEST_TIMEOUT_S)
        for name, processes in connections(plan.clients, cluster.names).items()
    }
    run.planned = plan.total
    try:
        for sender in senders.values():
            sender.start()
        t0 = run.started = loop.time() + 0.05
        send_deadline = t0 + seconds + 1.0  # a client that falls this far behind stops sending
        for intent in intents(plan, cluster.names, tag):
            due = t0 + intent.at
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if loop.time() > send_deadline:
                break
            sample = Sample(intent.cid, intent.agent, due, loop.time(), time.time())
            run.samples.append(sample)
            senders[intent.agent].submit(intent.body(), _sent, functools.partial(_answer, sample))
        remaining = max(0.0, send_deadline + RUN_GRACE_S - loop.time())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                for sender in senders.values():
                    await sender.join()
    finally:
        for sender in senders.values():
            await sender.stop()
        for s in run.samples:  # bounded in time: what has not answered by now is an error
            if s.answered is None and s.error is None:
                s.error = "client-deadline"


async def measure_rate(
    cluster: Cluster,
    nats_url: str,
    rate: float,
    seconds: float,
    tag: str,
    pids: dict[str, int],
    seed: int = 0,
) -> Run:
    """One rate: load, wait for rest, then match the 202s with their store times in the stream."""
    run = Run(rate, seconds, load_before=load_average())
    first_seq = await stream_last_seq(nats_url)
    run.memory_before = process_memory(pids)
    meter = CpuMeter(pids)
    with GcPauses() as pauses:
        await open_loop(cluster, rate, seconds, tag, run, seed)
    run.client_gc = pauses.summary()
    run.cpu = meter.percent()  # the load window only, not the settling after it
    run.load_after = load_average()
    # The 202s must be committed before the stream can tell their commit times.
    run.settle_s, run.settle_state = await settle(cluster, nats_url, SETTLE_TIMEOUT_S, mesh=False)
    run.memory_after = process_memory(pids)
    try:
        times, run.stream_dupes = await stream_store_times(nats_url, first_seq, f"{tag}-")
        run.stream_stored = len(times)
        for s in run.samples:
            s.stored_wall = times.get(s.cid)
    except (OSError, nats.errors.Error) as e:
        print(f"  (could not read the stream: {e!r}; commit latency covers 200s only)", file=sys.stderr)
    return run


WINDOW_S = 10.0


def windows(run: Run) -> list[dict[str, Any]]:
    """The run cut into WINDOW_S slices by send time: over a long `--seconds`, when the
    slow answers and the aborts happened, and whether the client itself fell behind."""
    slices: dict[int, list[Sample]] = {}
    for s in run.samples:
        slices.setdefault(int((s.sent - run.started) // WINDOW_S), []).append(s)
    out = []
    for index in sorted(slices):
        group = slices[index]
        latency = [x for s in group if (x := s.latency_ms) is not None]
        out.append(
            {
                "from_s": index * WINDOW_S,
                "sent": len(group),
                "answer_p99_ms": ms(percentile(latency, 99)),
                "answers_over_500_ms": sum(1 for x in latency if x >= 500),
                "not_committed": sum(1 for s in group if s.outcome not in ("committed", "pending-commit")),
                "send_lag_max_ms": ms(max((s.sent - s.due) * 1000 for s in group)),
            }
        )
    return out


def summarise(run: Run) -> dict[str, Any]:
    """The figures of one rate and its verdict against the budgets."""
    samples = run.samples
    sent = len(samples)
    outcomes = Counter(s.outcome for s in samples)
    counts = {o: outcomes.get(o, 0) for o in OUTCOMES}
    quorum = [s.quorum_ms for s in samples if s.quorum_ms is not None]
    answer_ms = [s.latency_ms for s in samples if s.outcome == "committed" and s.latency_ms is not None]
    # Invoke -> committed over every decided intent when the stream could be read.
    if run.stream_stored is not None:
        commit = [c for s in samples if (c := s.commit_ms) is not None]
    else:
        commit = answer_ms
    lag = [(s.sent - s.due) * 1000 for s in samples]

    span = 0.0
    if samples:
        send_span = max(s.sent for s in samples) - min(s.sent for s in samples)
        committed_at = [s.answered for s in samples if s.outcome == "committed" and s.answered]
        span = (max(committed_at) if committed_at else max(s.sent for s in samples)) - min(
            s.sent for s in samples
        )
    else:
        send_span = 0.0
    offered = (sent - 1) / send_span if sent > 1 and send_span > 0 else float(sent)
    achieved = counts["committed"] / span if span > 0 else 0.0

    failures = counts["aborted"] + counts["rejected"] + counts["error"]
    failure_share = failures / run.planned if run.planned else 0.0
    intent_p99 = percentile(quorum, 99)
    commit_p99 = percentile(commit, 99)
    checks = {
        "intent_p99": intent_p99 is not None and intent_p99 < INTENT_P99_BUDGET_MS,
        "commit_p99": commit_p99 is not None and commit_p99 < COMMIT_P99_BUDGET_MS,
        "failures": failure_share < FAILURE_BUDGET and sent == run.planned,
    }
    why = []
    if not checks["intent_p99"]:
        why.append(f"intent p99 {fmt_ms(intent_p99)} >= {INTENT_P99_BUDGET_MS:.0f} ms")
    if not checks["commit_p99"]:
        pending = counts["pending-commit"]
        note = f" ({pending} answered pending-commit)" if pending else ""
        why.append(f"commit p99 {fmt_ms(commit_p99)} >= {COMMIT_P99_BUDGET_MS:.0f} ms{note}")
    if not checks["failures"]:
        parts = [f"{counts[o]} {o}" for o in ("aborted", "rejected", "error") if counts[o]]
        reasons = Counter(s.abort_reason for s in samples if s.outcome == "aborted")
        if reasons:  # what the agents said: a timeout, or peers lost
            parts[0] += " (" + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) + ")"
        if sent < run.planned:
            parts.append(f"{run.planned - sent} never sent (client fell behind)")
        why.append(f"failures {failure_share:.1%} >= {FAILURE_BUDGET:.0%}: " + ", ".join(parts))
        if run.denials:  # agents refusing each other's connections: dropped ones still counted
            why.append(f"{run.denials} libp2p connection denials (per-peer connection limit)")
    if why and run.cpu.get("others", 0) >= OTHERS_NOTE_PERCENT:
        why.append(f"meanwhile other processes used {run.cpu['others']:.0f} % CPU")

    return {
        "rate": run.rate,
        "seconds": run.seconds,
        "planned": run.planned,
        "sent": sent,
        "offered_per_s": round(offered, 1),
        "achieved_per_s": round(achieved, 1),
        "outcomes": counts,
        "errors": dict(Counter(s.error for s in samples if s.outcome == "error")),
        "abort_reasons": dict(Counter(s.abort_reason for s in samples if s.outcome == "aborted")),
        "intent_ms": {"p50": ms(percentile(quorum, 50)), "p99": ms(intent_p99), "n": len(quorum)},
        "commit_ms": {
            "p50": ms(percentile(commit, 50)),
            "p99": ms(commit_p99),
            "p99_is_infinite": commit_p99 is not None and math.isinf(commit_p99),
            "n": len(commit),
            "includes_pending_commit": run.stream_stored is not None,
        },
        "answer_ms_committed": {"p50": ms(percentile(answer_ms, 50)), "p99": ms(percentile(answer_ms, 99))},
        "client_send_lag_ms": {"p50": ms(percentile(lag, 50)), "p99": ms(percentile(lag, 99))},
        "stream": {"stored": run.stream_stored, "stored_more_than_once": run.stream_dupes},
        "settle_s": run.settle_s,
        "at_rest_after": run.settle_s is not None,
        "not_at_rest_because": None if run.settle_s is not None else run.settle_state,
        "cluster": run.cluster,
        "libp2p_connection_denials": run.denials,
        "cpu_percent": run.cpu,
        "memory": {"before": run.memory_before, "after": run.memory_after},
        "client_gc": run.client_gc,
        "windows": windows(run),
        "load_average": {"before": run.load_before, "after": run.load_after},
        "budget": {"holds": all(checks.values()), "checks": checks, "why": why},
    }


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.1f}"


def commit_p99_text(row: dict[str, Any]) -> str:
    """The commit p99 of a summary row: JSON keeps null for "never committed", shown as inf."""
    return "inf" if row["commit_ms"]["p99_is_infinite"] else fmt_ms(row["commit_ms"]["p99"])


def breaking_point(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest rate that held below the first one that broke, and why it broke."""
    first_break = next((r for r in rows if not r["budget"]["holds"]), None)
    below = [
        r for r in rows if r["budget"]["holds"] and (first_break is None or r["rate"] < first_break["rate"])
    ]
    above_ok = [
        r["rate"] for r in rows if first_break and r["rate"] > first_break["rate"] and r["budget"]["holds"]
    ]
    return {
        "highest_holding_rate": below[-1]["rate"] if below else None,
        "first_breaking_rate": first_break["rate"] if first_break else None,
        "why": first_break["budget"]["why"] if first_break else [],
        # A higher rate that held again means the verdict is within the machine's noise.
        "held_again_above_break": above_ok,
    }


# -- printing ----------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'rate':>5} {'sent/s':>7} {'ok/s':>6} {'commit':>6} {'pend':>5} {'abort':>5} {'rej':>4} {'err':>4} "
        f"{'int p50':>7} {'int p99':>7} {'com p50':>7} {'com p99':>7} {'lag99':>6} "
        f"{'agents%':>8} {'others%':>7} {'denied':>6} {'load1':>5}  verdict"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        o, cpu = r["outcomes"], r["cpu_percent"]
        agents_cpu = sum(v for k, v in cpu.items() if k.startswith("agent-"))
        others = f"{cpu['others']:.0f}" if "others" in cpu else "-"
        load = r["load_average"]["after"]
        load1 = load[0] if load else float("nan")
        com_p99 = commit_p99_text(r)
        lines.append(
            f"{r['rate']:>5g} {r['offered_per_s']:>7.1f} {r['achieved_per_s']:>6.1f} {o['committed']:>6} "
            f"{o['pending-commit']:>5} {o['aborted']:>5} {o['rejected']:>4} {o['error']:>4} "
            f"{fmt_ms(r['intent_ms']['p50']):>7} {fmt_ms(r['intent_ms']['p99']):>7} "
            f"{fmt_ms(r['commit_ms']['p50']):>7} {com_p99:>7} {fmt_ms(r['client_send_lag_ms']['p99']):>6} "
            f"{agents_cpu:>8.0f} {others:>7} {r['libp2p_connection_denials']:>6} {load1:>5.2f}  "
            + ("holds" if r["budget"]["holds"] else "BREAKS: " + "; ".join(r["budget"]["why"]))
        )
    return "\n".join(lines)


# -- profiling ---------------------------------------------------------------------------


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


# -- the whole run -----------------------------------------------------------------------


def make_cluster(workdir: Path, nats_server: NatsServer, surreal: SurrealServer | None) -> Cluster:
    # Contract defaults for the agents, passed explicitly: see CONTRACT_TIMEOUTS.
    return Cluster(workdir, nats_server, 3, surreal=surreal, env=dict(CONTRACT_TIMEOUTS))


def process_pids(cluster: Cluster, nats_server: NatsServer, surreal: SurrealServer | None) -> dict[str, int]:
    """Every process whose CPU time the report shows, this one (the load client) included."""
    pids = {name: p.pid for name, p in cluster.processes.items() if p.pid is not None}
    if nats_server.pid is not None:
        pids["nats"] = nats_server.pid
    if surreal is not None and surreal.pid is not None:
        pids["surreal"] = surreal.pid
    pids["bench-client"] = os.getpid()
    return pids


async def warm_up(cluster: Cluster) -> None:
    """A few intents per agent, one after another: the first requests pay connection
    set-up and lazy imports, which are not what a rate should measure."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        for i in range(5):
            for name in cluster.names:
                body = {"key": "warm-up", "value": i, "cid": f"warm-{name}-{i}"}
                with contextlib.suppress(httpx.HTTPError):
                    await http.post(f"{cluster.url(name)}/intents", json=body)


class Clusters:
    """The cluster under load, replaced by a fresh one (same NATS and SurrealDB) when the
    old one does not come back to rest after a rate: agents that lost each other for
    good would make every later rate measure that damage rather than the rate. Each
    replacement is recorded with what was seen; the last cluster is stopped on exit."""

    def __init__(self, workdir: Path, nats_server: NatsServer, surreal: SurrealServer | None) -> None:
        self.workdir, self.nats, self.surreal = workdir, nats_server, surreal
        self.number = 0
        self.current: Cluster | None = None
        self.replaced: list[dict[str, Any]] = []

    def start(self, why: str, prepare: Callable[[Cluster], None] | None = None) -> Cluster:
        """A fresh cluster (the current one stopped first), warmed up and at rest."""
        self.stop()
        self.number += 1
        cluster = make_cluster(self.workdir / f"cluster-{self.number}", self.nats, self.surreal)
        if prepare is not None:
            prepare(cluster)
        print(f"starting cluster {self.number} ({why}) ...", flush=True)
        self.current = cluster.__enter__()  # stops whatever it started if it fails
        asyncio.run(warm_up(cluster))
        asyncio.run(settle(cluster, self.nats.url, MESH_TIMEOUT_S))
        return cluster

    def at_rest(self, before: str) -> Cluster:
        """The current cluster once it is at rest, else a fresh one."""
        if self.current is None:
            return self.start(before)
        took, state = asyncio.run(settle(self.current, self.nats.url, MESH_TIMEOUT_S))
        if took is not None:
            return self.current
        denials = connection_denials(self.current)
        self.replaced.append(
            {
                "cluster": self.number,
                "before": before,
                "not_at_rest_because": state,
                "libp2p_denials": denials,
            }
        )
        print(f"  cluster {self.number} not at rest after {MESH_TIMEOUT_S:g} s ({state}); replacing it")
        return self.start(f"before {before}")

    def stop(self) -> None:
        if self.current is not None:
            self.current.__exit__(None, None, None)
            self.current = None

    def __enter__(self) -> Clusters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sweep(
    clusters: Clusters,
    nats_server: NatsServer,
    surreal: SurrealServer | None,
    rates: list[float],
    seconds: float,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every rate in turn, lowest first, each on a system at rest."""
    rows = []
    for rate in rates:
        cluster = clusters.at_rest(f"rate {rate:g}")
        pids = process_pids(cluster, nats_server, surreal)
        denials = connection_denials(cluster)
        print(f"rate {rate:g}/s for {seconds:g} s (load average {load_average()}) ...", flush=True)
        run = asyncio.run(
            measure_rate(cluster, nats_server.url, rate, seconds, f"bench-r{rate:g}", pids, seed)
        )
        run.cluster, run.denials = clusters.number, connection_denials(cluster) - denials
        row = summarise(run)
        rows.append(row)
        o = row["outcomes"]
        errors = f" {row['errors']}" if row["errors"] else ""
        print(
            f"  sent {row['sent']}/{row['planned']}: {o['committed']} committed, "
            f"{o['pending-commit']} pending, {o['aborted']} aborted, {o['rejected']} rejected, "
            f"{o['error']} errors{errors}; intent p99 {fmt_ms(row['intent_ms']['p99'])} ms, "
            f"commit p99 {commit_p99_text(row)} ms; {run.denials} libp2p connection denials; "
            f"drained in {run.settle_s} s; cpu % {row['cpu_percent']}; client full GCs "
            f"{run.client_gc.get('full_collections')}, longest {run.client_gc.get('max_ms')} ms",
            flush=True,
        )
        bad = [w for w in row["windows"] if w["answers_over_500_ms"] or w["not_committed"]]
        if len(row["windows"]) > 2 and bad:
            print(
                f"  {len(bad)} of {len(row['windows'])} windows of {WINDOW_S:g} s had answers over "
                "500 ms or failures; the worst: "
                + "; ".join(
                    f"from {w['from_s']:g} s: {w['answers_over_500_ms']} slow, {w['not_committed']} failed, "
                    f"p99 {w['answer_p99_ms']} ms, send lag max {w['send_lag_max_ms']} ms"
                    for w in sorted(bad, key=lambda w: -w["answers_over_500_ms"])[:3]
                ),
                flush=True,
            )
        before, after = run.memory_before, run.memory_after
        print(
            "  rss MiB / open fds, before -> after: "
            + ", ".join(
                f"{name} {before[name]['rss_mib']:g}/{before[name]['fds']} -> {m['rss_mib']:g}/{m['fds']}"
                for name, m in after.items()
                if name in before
            ),
            flush=True,
        )
    return rows


def run_bench(args: argparse.Namespace, stem: Path) -> dict[str, Any]:
    """Start everything, sweep the rates, profile when asked (its files named from
    `stem`); everything started is killed on the way out of the `with` blocks."""
    report: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(work_folder(args.keep))
        nats_server = stack.enter_context(NatsServer(workdir / "nats"))
        surreal = None if args.no_projector else stack.enter_context(SurrealServer(workdir / "surreal"))
        clusters = stack.enter_context(Clusters(workdir, nats_server, surreal))
        rows = sweep(clusters, nats_server, surreal, args.rates, args.seconds, args.seed)
        report["rates"] = rows
        report["breaking_point"] = bp = breaking_point(rows)
        report["clusters_replaced"] = clusters.replaced
        if args.profile:
            # Just below the breaking point: the busiest the agent gets while still healthy.
            rate = bp["highest_holding_rate"] or bp["first_breaking_rate"] or args.rates[-1]
            # A fresh cluster: one that went through overload may carry damage (connections
            # dropped but still counted by libp2p) that would profile the damage instead.
            cluster = clusters.start("for the profile")
            profiler, why_not = choose_profiler(args.profiler, cluster.agents[PROFILED_AGENT].pid or 0)
            profile: dict[str, Any] = {"profiler": profiler, "agent": PROFILED_AGENT, "rate": rate}
            profile |= {"seconds": args.profile_seconds, "pyspy_not_used_because": why_not}
            print(f"profiling {PROFILED_AGENT} with {profiler} at {rate:g}/s ...", flush=True)
            profile["load_average"] = load_average()
            if profiler == "py-spy":
                pids = process_pids(cluster, nats_server, surreal)
                profile |= asyncio.run(
                    profile_with_pyspy(
                        cluster, nats_server.url, rate, args.profile_seconds, stem, pids, args.pyspy_blocking
                    )
                )
            else:  # agent-1 must start under the wrapper: a fresh cluster
                profile |= profile_with_cprofile(
                    clusters, nats_server, surreal, rate, args.profile_seconds, stem
                )
            report["profile"] = profile
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--rates", default="100,200,300,400,500,600,700", help="intents/s to offer, comma-separated"
    )
    p.add_argument("--seconds", type=float, default=15.0, help="load duration per rate")
    p.add_argument("--seed", type=int, default=0, help="the load plan's seed (agents, keys, values)")
    p.add_argument(
        "--out",
        default="reports/bench/netsync-throughput.json",
        help="JSON report (relative: to the repo root)",
    )
    p.add_argument("--profile", action="store_true", help="profile agent-1 at the highest rate that held")
    p.add_argument(
        "--profiler",
        choices=("auto", "py-spy", "cprofile"),
        default="auto",
        help="auto: py-spy when it can attach, else cProfile",
    )
    p.add_argument(
        "--profile-seconds", type=float, default=None, help="profile duration (default: --seconds)"
    )
    p.add_argument(
        "--pyspy-blocking",
        action="store_true",
        help="pause the agent per sample: whole stacks, more perturbation",
    )
    p.add_argument("--no-projector", action="store_true", help="skip SurrealDB and the projector")
    p.add_argument("--keep", action="store_true", help="keep the processes' folders and logs")
    args = p.parse_args(argv)
    args.rates = sorted({float(r) for r in args.rates.split(",") if r.strip()})
    if not args.rates or min(args.rates) <= 0 or args.seconds <= 0:
        p.error("rates and seconds must be positive")
    args.profile_seconds = args.profile_seconds or args.seconds
    return args


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


def print_verdict(report: dict[str, Any]) -> None:
    meta, bp = report["meta"], report["breaking_point"]
    print()
    print(table(report["rates"]))
    print()
    print(
        f"budgets: intent p99 < {INTENT_P99_BUDGET_MS:.0f} ms, commit p99 < {COMMIT_P99_BUDGET_MS:.0f} ms, "
        f"aborted+rejected+errors < {FAILURE_BUDGET:.0%}"
    )
    why = f" ({'; '.join(bp['why'])})" if bp["why"] else ""
    print(
        f"highest rate that holds: {bp['highest_holding_rate']}; "
        f"first that breaks: {bp['first_breaking_rate']}{why}"
    )
    if bp["held_again_above_break"]:
        print(
            f"note: held again at {bp['held_again_above_break']}, above the break: the verdict is noisy here"
        )
    print(
        f"load average at start {meta['load_average_start']}, at end {meta['load_average_end']} "
        "(other load on the machine inflates every latency)"
    )


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, started, meta = begin(args)
    meta |= {
        "projector": not args.no_projector,
        "budgets": {
            "intent_p99_ms": INTENT_P99_BUDGET_MS,
            "commit_p99_ms": COMMIT_P99_BUDGET_MS,
            "failure_share": FAILURE_BUDGET,
        },
    }
    print(
        f"netsync throughput bench: rates {args.rates}, {args.seconds:g} s each; "
        f"load average {load_average()}; netsync {meta['source']}"
    )
    report = {"meta": meta} | run_bench(args, out.with_suffix(""))
    meta["load_average_end"] = load_average()
    if source_state()["netsync_sha256"] != meta["source"]["netsync_sha256"]:
        # Processes started after the change ran other code than those before it.
        meta["source"]["changed_during_run"] = True
        print("WARNING: netsync/ changed while the bench ran: the figures mix two versions")
    meta["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    print_verdict(report)
    if "profile" in report:
        report["profile"]["date"] = meta["date"]
        text = out.with_name(f"{out.with_suffix('').name}-profile.txt")
        text.write_text(profile_text(report["profile"]))
        report["profile"]["text"] = str(text)
        print(f"profile ({report['profile']['profiler']}): {text}")
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {out}")
    return 0


def run(entry: Callable[[], int]) -> None:
    """Exit with `entry`'s status; on Ctrl-C, 130, once the `with` blocks have killed what they started."""
    try:
        sys.exit(entry())
    except KeyboardInterrupt:
        print("interrupted: every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run(main)
