"""Latency budgets, judged at p99 over ops invoked in healthy windows only (docs/run-format.md):
`quorum_ms` as the agent reports it against `budgets.intent_ms`, and invoke-to-`committed` as
the client saw it against `budgets.commit_ms`. A budget is judged on MIN_FOR_P99 values or more;
with fewer, the figures say it was not judged (a scenario needs a longer healthy window)."""

from __future__ import annotations

import numpy as np

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import ACCEPTED, COMMITTED, Run
from harness.checkers.windows import MIN_FOR_P99, healthy_mask, p99


def healthy_ops(run: Run) -> np.ndarray:
    h = run.history
    return run.memo("healthy_ops", lambda: healthy_mask(h.ops.invoked, h.faults, h.end, run.settings.grace_s))


def check(run: Run) -> Result:
    ops, s = run.history.ops, run.settings
    healthy = healthy_ops(run)
    quorum = ops.quorum_ms[healthy & np.isin(ops.code, ACCEPTED)].astype(np.float64)
    committed = healthy & (ops.code == COMMITTED)
    commit = (ops.completed[committed] - ops.invoked[committed]) * 1000.0
    quorum = quorum[~np.isnan(quorum)]
    intent_p99, commit_p99 = p99(quorum), p99(commit)
    n_quorum = len(quorum)
    judged = {"intent": n_quorum >= MIN_FOR_P99, "commit": len(commit) >= MIN_FOR_P99}
    anomalies = []
    if judged["intent"] and intent_p99 is not None and intent_p99 > s.intent_ms:
        anomalies.append(
            Anomaly(
                "intent-latency",
                f"p99 quorum_ms {intent_p99:.1f} > {s.intent_ms:g} over {n_quorum} healthy-window ops",
            )
        )
    if judged["commit"] and commit_p99 is not None and commit_p99 > s.commit_ms:
        anomalies.append(
            Anomaly(
                "commit-latency",
                f"p99 invoke-to-committed {commit_p99:.1f} ms > {s.commit_ms:g} "
                f"over {len(commit)} healthy-window ops",
            )
        )
    figures = {
        "healthy_ops": int(healthy.sum()),
        "intent_p99_ms": None if intent_p99 is None else round(intent_p99, 3),
        "intent_budget_ms": s.intent_ms,
        "commit_p99_ms": None if commit_p99 is None else round(commit_p99, 3),
        "commit_budget_ms": s.commit_ms,
        "intent_values": n_quorum,
        "commit_values": len(commit),
    }
    for budget, ok in judged.items():
        if not ok:
            figures[f"{budget}_not_judged"] = f"fewer than {MIN_FOR_P99} healthy-window values"
    return Result(figures, anomalies)


CHECKER = Checker("latency", check, ("intent-latency", "commit-latency"))
