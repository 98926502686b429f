"""The `expect` rules of scenario.json (docs/run-format.md): min_committed, aborts, rejections and
drained_within_s; each broken rule is one `expectation` anomaly whose detail names it. And the
agent's contract itself: each answer that broke it (as the load recorded, or as the history shows
it: a stream_seq or quorum_ms of the wrong type) is an `expectation` anomaly of that operation."""

from __future__ import annotations

import numpy as np

from harness import store
from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.reconciliation import joined
from harness.checkers.run import ABORTED, NOT_INVOKED, REFUSED, REJECTED, Run

BROKE_CONTRACT = "the agent's answer broke the contract:"


def committed(run: Run) -> int:
    """Intents that ended committed: invoked, not refused, and present in the stream or the store."""
    j = joined(run)
    return int((j.landed & (j.code != NOT_INVOKED) & ~np.isin(j.code, REFUSED)).sum())


def drained_at(run: Run, after: float) -> float | None:
    """The first moment at or after `after` when every agent's latest sample shows an empty buffer."""
    latest: dict[str, float] = {}
    events = sorted(
        (s.t, source, s.buffer_depth)
        for source, samples in run.samples.items()
        for s in samples
        if s.buffer_depth is not None
    )
    agents = {source for _t, source, _d in events}
    for t, source, depth in events:
        latest[source] = depth
        if t >= after and len(latest) == len(agents) and not any(latest.values()):
            return t
    return None


def check(run: Run) -> Result:
    s, h = run.settings, run.history
    anomalies = [
        Anomaly(
            "expectation",
            f"{BROKE_CONTRACT} {b.what} (cid {b.cid}, t={b.t:g}, {store.HISTORY}:{b.line})",
            b.cid,
        )
        for b in h.broken
    ]
    n_committed = committed(run)
    if n_committed < s.min_committed:
        anomalies.append(
            Anomaly(
                "expectation",
                f"min_committed: {n_committed} intents ended committed, fewer than {s.min_committed}",
            )
        )
    counts = {"aborted": int((h.ops.code == ABORTED).sum()), "rejected": int((h.ops.code == REJECTED).sum())}
    for outcome, rule_name, rule in (
        ("aborted", "aborts", s.aborts),
        ("rejected", "rejections", s.rejections),
    ):
        n = counts[outcome]
        if rule == "forbidden" and n:
            anomalies.append(
                Anomaly("expectation", f"{rule_name}: forbidden, yet {n} intents were {outcome}")
            )
        if rule == "expected" and not n:
            anomalies.append(Anomaly("expectation", f"{rule_name}: expected, yet no intent was {outcome}"))
    # No analytics.jsonl (the node could not be read): the analytics check says unknown, not this one.
    lines = run.changes() if s.cdc_gaps == "expected" else None
    if lines is not None and not any(c.type == "gap" for c in lines):
        anomalies.append(
            Anomaly("expectation", "cdc_gaps: expected, yet the analytics consumer reported no gap")
        )
    stops = [f.stop for f in h.faults]
    figures: dict[str, object] = {
        "committed": n_committed,
        **counts,
        "contract_broken": len(h.broken),
    }
    watched = any(x.buffer_depth is not None for series in run.samples.values() for x in series)
    # a fault active to the end: nothing to drain after; no buffer in the samples: nothing to watch
    if None not in stops and watched:
        after = max(stops, default=0.0)
        at = drained_at(run, after)
        figures["drained_after_s"] = None if at is None else round(at - after, 3)
        if at is None or at - after > s.drained_within_s:
            seen = "never, in the samples" if at is None else f"only at t={at:g}"
            what = "the last fault stopped" if stops else "the start"
            anomalies.append(
                Anomaly(
                    "expectation",
                    f"drained_within_s: buffers empty within {s.drained_within_s:g}s after {what} "
                    f"(t={after:g}); "
                    f"seen {seen}",
                )
            )
    return Result(figures, anomalies)


CHECKER = Checker("expectations", check, ("expectation",))
