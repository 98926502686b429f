"""Soak trends: a process's RSS or open fds, or the consumer's backlog, that grows over the run after
a warm-up, by more than the thresholds below (docs/run-format.md, "Leaks"): a `leak` anomaly whose
detail names the source, the metric and the fitted growth. Short runs are not judged.

Each incarnation of a process (its samples' `started` changes when it restarts) is judged on its own,
with its own warm-up: a crash resets a leaking process's memory, and a line fitted across the restart
would see a saw as flat."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import Run, Sample
from harness.shape import ANALYTICS, is_nats

WARMUP_S = 60.0  # the first minute, or WARMUP_SHARE of the run if longer, is not judged
WARMUP_SHARE = 0.2
MIN_SPAN_S = 120.0  # at least this long after the warm-up, with
MIN_POINTS = 10  # at least this many samples, or the metric is not judged
# metric -> (absolute growth, growth relative to the fitted level at the warm-up's end): a leak
# grows by more than both over the judged span
THRESHOLDS: dict[str, tuple[float, float]] = {
    "rss_bytes": (32 * 2**20, 0.25),
    "open_fds": (20, 0.5),
    "consumer_backlog": (100, 0.0),
}
# Sources that hold the run's data: their memory grows with what they store, by design (SurrealDB keeps
# every row the projector wrote, and SurrealKV every key in memory; NATS caches its stream up to its
# limits; every node of a NATS cluster; the analytics node keeps every cid it applied, its exactly-once
# guard). Their RSS growth is reported beside the verdict, not judged; their
# open fds are judged.


def holds_data(source: str) -> bool:
    return source in ("surrealdb", ANALYTICS) or is_nats(source)


def trend(points: list[tuple[float, float]]) -> tuple[float, float, float, float] | None:
    """(t0, level at t0, t1, level at t1) of a least-squares line through the points after the warm-up;
    None when too few or too short to judge. The report draws the same line."""
    if len(points) < 2:
        return None
    t0, t1 = points[0][0], points[-1][0]
    warm = t0 + max(WARMUP_S, WARMUP_SHARE * (t1 - t0))
    judged = [(t, v) for t, v in points if t >= warm]
    if len(judged) < MIN_POINTS or judged[-1][0] - judged[0][0] < MIN_SPAN_S:
        return None
    t = np.array([p[0] for p in judged])
    v = np.array([p[1] for p in judged], dtype=np.float64)
    slope, intercept = np.polyfit(t, v, 1)
    start, end = float(t[0]), float(t[-1])
    return start, float(slope * start + intercept), end, float(slope * end + intercept)


def fitted_growth(points: list[tuple[float, float]]) -> tuple[float, float, float] | None:
    """(growth over the judged span, level at its start, span) of trend(points)."""
    line = trend(points)
    if line is None:
        return None
    start, level, end, last = line
    return last - level, level, end - start


def incarnations(samples: list[Sample], metric: str) -> list[list[tuple[float, float]]]:
    """The (t, value) points of `metric`, split where the process restarted (`started` changed); a
    sample without `started` belongs to the incarnation before it."""
    parts: list[list[tuple[float, float]]] = []
    current: float | None = None
    for s in samples:
        v = getattr(s, metric)
        if v is None:
            continue
        if not parts or (s.started is not None and current is not None and s.started != current):
            parts.append([])
        if s.started is not None:
            current = s.started
        parts[-1].append((s.t, v))
    return parts


def check(run: Run) -> Result:
    anomalies: list[Anomaly] = []
    judged: dict[str, Any] = {}
    reported: dict[str, Any] = {}
    for source, samples in sorted(run.samples.items()):
        for metric, (absolute, relative) in THRESHOLDS.items():
            parts = incarnations(samples, metric)
            fits = [(points[0][0], fit) for points in parts if (fit := fitted_growth(points))]
            if not fits:
                continue
            worst = round(max(growth for _, (growth, _, _) in fits), 1)  # the worst incarnation's
            if holds_data(source) and metric == "rss_bytes":
                reported[f"{source}.{metric}"] = worst
                continue
            judged[f"{source}.{metric}"] = worst
            for began, (growth, level, span) in fits:
                limit = max(absolute, relative * level)
                if growth > limit:
                    since = f" of the incarnation that started at t={began:.0f}s" if len(parts) > 1 else ""
                    anomalies.append(
                        Anomaly(
                            "leak",
                            f"{source} {metric}: fitted growth {growth:,.0f} over {span:.0f}s after the "
                            f"warm-up{since} (from {level:,.0f}), over the threshold {limit:,.0f}",
                        )
                    )
    return Result({"judged": judged, "reported": reported}, anomalies)


CHECKER = Checker("leak", check, ("leak",))
