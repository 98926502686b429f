"""The open-loop load of bench/netsync_throughput.py and its per-request records: one `Sample` per
intent (when it was due, sent, answered, and how), one `Run` per rate, the load client's own GC
pauses, the harness's seeded plan sent over its queue-fed sender (open_loop), and the warm-up."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import math
import time
from dataclasses import dataclass, field

import httpx

from harness.load.ops import LoadPlan, connections, intents
from harness.load.sender import IntentSender, Reply
from tests.integration.netsync_procs import Cluster

REQUEST_TIMEOUT_S = 5.0  # far above any budget: a request this slow is an error anyway
RUN_GRACE_S = REQUEST_TIMEOUT_S + 5.0  # after the last send, how long answers may take
STATUS_OUTCOME = {200: "committed", 202: "pending-commit", 409: "aborted", 429: "rejected"}
# Per agent: enough connections that a slow answer never holds back the next send (open
# loop); past that, requests wait in the sender's queue, and the wait counts as latency.
# The sender and the seeded plan are the harness's (harness/load/), the ones scenarios use.
CONNECTIONS_PER_AGENT = 64


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


async def warm_up(cluster: Cluster) -> None:
    """A few intents per agent, one after another: the first requests pay connection
    set-up and lazy imports, which are not what a rate should measure."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
        for i in range(5):
            for name in cluster.names:
                body = {"key": "warm-up", "value": i, "cid": f"warm-{name}-{i}"}
                with contextlib.suppress(httpx.HTTPError):
                    await http.post(f"{cluster.url(name)}/intents", json=body)
