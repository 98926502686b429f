"""Did each fault bite? A fault whose window (start to stop, plus `recovery_grace_s`) shows none of
the signs its kind produces is a `no-effect` anomaly: a chaos run whose fault did not bite is a
false green. Also each fault's recovery time: its stop to the first committed intent invoked
after it. Which signs count for which kind: docs/run-format.md, "Effects"."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.latency import healthy_ops
from harness.checkers.run import ACCEPTED, COMMITTED, PENDING_COMMIT, REFUSED, UNKNOWN, Fault, Run
from harness.checkers.windows import p99

SLOW_SHARE = 0.05  # a latency sign: at least this share of the window's answers above the reference
SLOW_MIN = 2  # ... and at least this many
BACKLOG_RISE = 5  # a backlog sign: the consumer's backlog this many messages above its level before
# The latency sign's reference is the healthy answers' nearest-rank p99 only when there are this many:
# a healthy answer exceeds the r-th smallest of n others with probability (n + 1 - r) / (n + 1), about
# 1 % from 100 values on; of fewer the p99 is their maximum, which a healthy answer exceeds with
# probability 1 / (n + 1) (a quarter of the time with 3), so a fault would seem to bite by chance.
# Below it the reference is the commit budget: a sign then needs answers slower than the scenario allows.
MIN_FOR_REFERENCE = 100
# The engine's states of a container out of service, and `halted`: the nemesis's own word for a power
# loss's node, every process frozen with SIGKILL pending (docs/run-format.md).
DOWN_STATES = ("exited", "dead", "paused", "restarting", "removing", "created", "halted")

Sign = Callable[[Run, Fault, float, float], str | None]


def _answers(run: Run, fault: Fault, start: float, end: float) -> str | None:
    ops = run.history.ops
    done = (ops.completed >= start) & (ops.completed <= end)
    other = done & np.isin(ops.code, (PENDING_COMMIT, *REFUSED, *UNKNOWN))
    never = np.isnan(ops.completed) & (ops.invoked >= start) & (ops.invoked <= end)
    n = int(other.sum() + never.sum())
    return f"{n} answers other than committed" if n else None


def _reference_ms(run: Run) -> tuple[float, str]:
    """What a window's answer must be slower than to count, and what that is, for the detail."""

    def make() -> tuple[float, str]:
        ops = run.history.ops
        healthy = healthy_ops(run) & np.isin(ops.code, (*ACCEPTED, *REFUSED))
        latency = (ops.completed[healthy] - ops.invoked[healthy]) * 1000.0
        ref = p99(latency) if len(latency) >= MIN_FOR_REFERENCE else None
        if ref is not None:
            return ref, f"healthy p99 of {len(latency)} answers"
        return (
            run.settings.commit_ms,
            f"commit budget: {len(latency)} healthy answers, fewer than {MIN_FOR_REFERENCE}",
        )

    return run.memo("effects_reference_ms", make)


def _latency(run: Run, fault: Fault, start: float, end: float) -> str | None:
    ops = run.history.ops
    window = (ops.invoked >= start) & (ops.invoked <= end) & ~np.isnan(ops.completed)
    if not window.any():
        return None
    ref, what = _reference_ms(run)
    latency = (ops.completed[window] - ops.invoked[window]) * 1000.0
    slow = int((latency > ref).sum())
    if slow >= max(SLOW_MIN, math.ceil(SLOW_SHARE * len(latency))):
        return f"{slow} of {len(latency)} answers slower than {ref:.1f} ms ({what})"
    return None


def _before_and_during(
    points: list[tuple[float, float]], start: float, end: float
) -> tuple[float, float | None]:
    before = 0.0
    during: float | None = None
    for t, value in points:
        if t < start:
            before = value
        elif t <= end:
            during = value if during is None else max(during, value)
    return before, during


def _buffers(run: Run, fault: Fault, start: float, end: float) -> str | None:
    for source, samples in sorted(run.samples.items()):
        points = [(s.t, s.buffer_depth) for s in samples if s.buffer_depth is not None]
        before, during = _before_and_during(points, start, end)
        if during is not None and during > before:
            return f"{source} buffer rose from {before:g} to {during:g}"
    return None


def _backlog(run: Run, fault: Fault, start: float, end: float) -> str | None:
    for source, samples in sorted(run.samples.items()):
        points = [(s.t, b) for s in samples if (b := s.consumer_backlog) is not None]
        before, during = _before_and_during(points, start, end)
        if during is not None and during >= before + BACKLOG_RISE:
            return f"{source} consumer backlog rose from {before:g} to {during:g}"
    return None


def _container(run: Run, fault: Fault, start: float, end: float) -> str | None:
    evidence = fault.evidence or {}
    state = evidence.get("state")
    if state in DOWN_STATES:
        return f"the nemesis saw {evidence.get('container', 'the container')} {state}"
    nodes = evidence.get("nodes")  # a power loss: {node: {"state": ..., ...}}
    nodes = nodes if isinstance(nodes, dict) else {}
    down = [n for n, e in nodes.items() if isinstance(e, dict) and e.get("state") in DOWN_STATES]
    if down:
        return f"the nemesis saw {', '.join(down)} {nodes[down[0]]['state']}"
    return None


def _count(value: Any) -> int:
    """A count the nemesis recorded, 0 when it is none: a JSON `true` is not 1, nor `1.0` a count, and
    past 2^63 it is no count of calls or bytes."""
    return value if type(value) is int and 0 < value < 1 << 63 else 0


def _disk(run: Run, fault: Fault, start: float, end: float) -> str | None:
    evidence = fault.evidence or {}
    if lost := _count(evidence.get("lost_bytes")):
        return f"faultfs dropped {lost} unsynced bytes"
    if failed := _count(evidence.get("failed")):
        return f"faultfs failed {failed} calls with EIO"
    calls = evidence.get("calls") if isinstance(evidence.get("calls"), dict) else {}
    for name, what in (("enospc", "refused {} writes with ENOSPC"), ("slowed", "delayed {} fsyncs")):
        if n := _count(calls.get(name)):
            return "faultfs " + what.format(n)
    return None


def _repeats(run: Run, fault: Fault, start: float, end: float) -> str | None:
    if reposted := _count((fault.evidence or {}).get("reposted")):
        return f"the nemesis posted {reposted} answered intents again"
    return None


def _cluster(run: Run, fault: Fault, start: float, end: float) -> str | None:
    """A NATS cluster's samples: the stream's leader moved, or a replica lagged, inside the window. Only a
    node's word on itself counts for the leader (a follower may name a dead leader for seconds)."""
    samples = sorted(
        ((s.t, source, s) for source, series in run.samples.items() for s in series), key=lambda x: x[:2]
    )
    claims = [(t, source) for t, source, s in samples if s.stream_leader == source]
    before = [source for t, source in claims if t < start]
    for t, source in claims:
        if start <= t <= end and before and source != before[-1]:
            return f"{source} took the stream's lead from {before[-1]}"
    for t, source, s in samples:
        if start <= t <= end and s.replicas_lagging:
            return f"{source} saw replicas {', '.join(s.replicas_lagging)} lagging"


def _clock(run: Run, fault: Fault, start: float, end: float) -> str | None:
    """The agents' own clocks, read by the nemesis once the fault took effect (seconds off the host's)."""
    clock = (fault.evidence or {}).get("clock")
    # Seconds as a JSON number: `true` is not 1 s, and an integer past any clock is no reading.
    offsets = (clock if isinstance(clock, dict) else {}).items()
    moved = {n: s for n, s in offsets if type(s) in (int, float) and 1 <= abs(s) < 1e12}
    if moved:
        return ", ".join(f"{n}'s clock read {s:+.1f} s off the host's" for n, s in sorted(moved.items()))
    return None


SIGNS: dict[str, Sign] = {
    "answers": _answers,
    "latency": _latency,
    "buffer": _buffers,
    "backlog": _backlog,
    "container": _container,
    "repeats": _repeats,
    "disk": _disk,
    "cluster": _cluster,
    "clock": _clock,
}
_TRAFFIC = ("answers", "latency", "buffer", "backlog")
# Which signs a fault of each kind can produce; a kind not named here is judged by the traffic signs.
KIND_SIGNS: dict[str, tuple[str, ...]] = {
    # In a NATS cluster a node's fault may show only in the cluster's own samples (its leader, its replicas).
    "crash": (*_TRAFFIC, "container", "cluster"),
    "pause": (*_TRAFFIC, "container", "cluster"),
    "isolate": (*_TRAFFIC, "cluster"),
    "partition": (*_TRAFFIC, "cluster"),
    "outage": (*_TRAFFIC, "container"),  # kill and pause leave container evidence; refuse, blackhole do not
    "repeat": ("repeats",),
    # A power loss kills its nodes (container) and drops their unsynced writes (disk); the other disk faults
    # count what faultfs did to the calls of their window, beside the traffic.
    "power-loss": (*_TRAFFIC, "container", "disk", "cluster"),
    "disk-error": (*_TRAFFIC, "disk"),
    "disk-full": (*_TRAFFIC, "disk"),
    "disk-slow": (*_TRAFFIC, "disk"),
    # A clock fault need not change the traffic: the agent's own clock, read by the nemesis, is its sign.
    "clock-skew": (*_TRAFFIC, "clock"),
    "clock-jump": (*_TRAFFIC, "clock"),
    "clock-strobe": (*_TRAFFIC, "clock"),
}


def signs_of(kind: str) -> tuple[str, ...]:
    return KIND_SIGNS.get(kind, _TRAFFIC)


def recovery_s(run: Run, stop: float) -> float | None:
    ops = run.history.ops
    after = (ops.code == COMMITTED) & (ops.invoked >= stop)
    if not after.any():
        return None
    return round(float(ops.completed[after].min()) - stop, 3)


def check(run: Run) -> Result:
    h, grace = run.history, run.settings.grace_s
    anomalies: list[Anomaly] = []
    per_fault: dict[str, Any] = {}
    for fault in h.faults:
        end = fault.until(h.end) + grace
        found = {
            name: why for name in signs_of(fault.kind) if (why := SIGNS[name](run, fault, fault.began, end))
        }
        per_fault[fault.fault_id] = {
            "fault": fault.kind,
            "start": fault.start,
            "stop": fault.stop,
            "lateness_s": None if fault.scheduled is None else round(fault.start - fault.scheduled, 3),
            "effects": found,
            "recovery_s": None if fault.stop is None else recovery_s(run, fault.stop),
        }
        if not found:
            looked = ", ".join(signs_of(fault.kind))
            stop = f"{fault.stop:g}" if fault.stop is not None else "the end"
            anomalies.append(
                Anomaly(
                    "no-effect",
                    f"{fault.fault_id} ({fault.kind}, t={fault.start:g} to {stop}, +{grace:g}s grace): "
                    f"none of the signs of its kind: {looked}",
                )
            )
    return Result({"faults": per_fault}, anomalies)


CHECKER = Checker("effects", check, ("no-effect",))
