"""Stream retention: with a limit set in scenario.json's `stream`, the consumer must never need
messages the limit discards. A `retention` anomaly when the consumer's backlog reached a limit, or at
the rate it grew would have within the scenario's horizon (docs/run-format.md, "Retention")."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import ACCEPTED, Run

MIN_POINTS = 5  # samples needed to project the backlog's growth


def _backlog(run: Run) -> list[tuple[float, float, float | None]]:
    """(t, backlog in messages, mean message size in bytes or None) per jetstream-like sample."""
    out = []
    for samples in run.samples.values():
        for s in samples:
            if (backlog := s.consumer_backlog) is None:
                continue
            size = s.stream_bytes / s.stream_msgs if s.stream_msgs and s.stream_bytes is not None else None
            out.append((s.t, backlog, size))
    return sorted(out, key=lambda p: p[0])


def exhaustion(run: Run) -> dict[str, Any]:
    """The stream's messages and bytes at the end, their observed growth per second (least squares over
    the run's samples) and, against a limit, the seconds until the stream reaches it at that rate (0:
    reached; absent: no limit, or not growing). Reaching a limit is legal (old messages go); the
    anomaly is only the consumer still needing them."""
    s = run.settings
    figures: dict[str, Any] = {}
    js = sorted(
        (x for got in run.samples.values() for x in got if x.stream_msgs is not None), key=lambda x: x.t
    )
    for field, limit, name in (("stream_msgs", s.max_msgs, "msgs"), ("stream_bytes", s.max_bytes, "bytes")):
        points = [(x.t, v) for x in js if (v := getattr(x, field)) is not None]
        if not points:
            continue
        last = points[-1][1]
        figures[f"stream_{name}_last"] = last
        if len(points) < MIN_POINTS:
            continue
        slope = float(np.polyfit([p[0] for p in points], [p[1] for p in points], 1)[0])
        figures[f"stream_{name}_per_s"] = round(slope, 3)
        if limit is not None:
            if last >= limit:
                figures[f"stream_{name}_limit_in_s"] = 0
            elif slope > 0:
                figures[f"stream_{name}_limit_in_s"] = round((limit - last) / slope, 1)
    return figures


def check(run: Run) -> Result:
    s, h = run.settings, run.history
    figures: dict[str, Any] = {"max_msgs": s.max_msgs, "max_bytes": s.max_bytes, "max_age_s": s.max_age_s}
    figures |= exhaustion(run)
    if not s.stream_limited:
        return Result({**figures, "judged": False})
    points = _backlog(run)
    duration = max(h.end, 1e-9)
    rate = float(np.isin(h.ops.code, ACCEPTED).sum()) / duration  # intents per second into the stream
    anomalies: list[Anomaly] = []

    def needs(backlog: float, size: float | None) -> list[str]:
        hits = []
        if s.max_msgs is not None and backlog >= s.max_msgs:
            hits.append(f"{backlog:g} messages >= max_msgs {s.max_msgs}")
        if s.max_bytes is not None and size is not None and backlog * size >= s.max_bytes:
            hits.append(f"about {backlog * size:,.0f} bytes >= max_bytes {s.max_bytes}")
        if s.max_age_s is not None and rate > 0 and backlog / rate >= s.max_age_s:
            hits.append(f"its oldest about {backlog / rate:.1f}s old >= max_age_s {s.max_age_s:g}")
        return hits

    peak = max(points, key=lambda p: p[1], default=None)
    figures["peak_backlog"] = None if peak is None else peak[1]
    for t, backlog, size in points:
        if hits := needs(backlog, size):
            anomalies.append(Anomaly("retention", f"at t={t:g} the consumer still needed " + "; ".join(hits)))
            break
    horizon = max(s.horizon_s or 0.0, h.end)
    if not anomalies and len(points) >= MIN_POINTS:
        t = np.array([p[0] for p in points])
        v = np.array([p[1] for p in points], dtype=np.float64)
        slope, intercept = np.polyfit(t, v, 1)
        projected = float(slope * horizon + intercept)
        sizes = [p[2] for p in points if p[2] is not None]
        if slope > 0 and (hits := needs(projected, sizes[-1] if sizes else None)):
            anomalies.append(
                Anomaly(
                    "retention",
                    f"the backlog grows {slope:.2f} messages/s: by the horizon t={horizon:g} "
                    "the consumer would need " + "; ".join(hits),
                )
            )
    return Result({**figures, "judged": True}, anomalies)


CHECKER = Checker("retention", check, ("retention",))
