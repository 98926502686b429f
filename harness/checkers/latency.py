"""Latency budgets over ops invoked in healthy windows only (docs/run-format.md): `quorum_ms` as the
agent reports it against `budgets.intent_ms`, and invoke-to-`committed` as the client saw it against
`budgets.commit_ms`. A budget bounds the p99, so at most 1 % of ops may be over it; with n ops and k
over, the anomaly holds when an exact one-sided binomial test rejects that at p < 0.001. That is
judged on any n: one outlier among 37 ops is chance, a tenth of them over the budget is not."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import ACCEPTED, COMMITTED, Run
from harness.checkers.windows import healthy_mask, p99

SHARE = 0.01  # the share of ops a p99 budget lets go over it
ALPHA = 0.001  # how unlikely k of n over the budget must be, were only SHARE over it, to be an anomaly


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly up to floating point: the terms are summed from the
    k-th outwards, each from the last by the ratio of consecutive binomial terms, until they no longer
    change the sum; the first term in log space (lgamma), so that no intermediate over- or underflows.
    Below the mean the upper tail is large and is taken as 1 - P(X <= k - 1)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    odds = p / (1.0 - p)

    def log_term(i: int) -> float:
        return (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * math.log(p)
            + (n - i) * math.log1p(-p)
        )

    upper = k > n * p
    i = k if upper else k - 1
    total, term = 1.0, 1.0  # relative to the first term
    while True:
        if upper:
            if i >= n:
                break
            term *= (n - i) / (i + 1) * odds
            i += 1
        else:
            if i <= 0:
                break
            term *= i / (n - i + 1) / odds
            i -= 1
        total += term
        if term < total * 1e-17:
            break
    mass = math.exp(log_term(k if upper else k - 1)) * total
    return min(1.0, mass) if upper else max(0.0, 1.0 - mass)


def healthy_ops(run: Run) -> np.ndarray:
    h = run.history
    return run.memo("healthy_ops", lambda: healthy_mask(h.ops.invoked, h.faults, h.end, run.settings.grace_s))


def _judge(name: str, values: np.ndarray, budget: float, what: str) -> tuple[dict[str, Any], Anomaly | None]:
    """The figures of one budget (p99, n, k, p-value) and its anomaly, if the test rejects."""
    n = len(values)
    k = int((values > budget).sum())
    ninety_ninth = p99(values)
    figures: dict[str, Any] = {
        f"{name}_p99_ms": None if ninety_ninth is None else round(ninety_ninth, 3),
        f"{name}_budget_ms": budget,
        f"{name}_values": n,
        f"{name}_over_budget": k,
    }
    if n == 0:
        figures[f"{name}_not_judged"] = "no healthy-window values"
        return figures, None
    p_value = binomial_tail(n, k, SHARE)
    figures[f"{name}_p_value"] = float(f"{p_value:.3g}")
    if p_value >= ALPHA:
        return figures, None
    return figures, Anomaly(
        f"{name}-latency",
        f"{k} of {n} healthy-window ops over the {budget:g} ms budget of {what} (p99 {ninety_ninth:.1f} ms): "
        f"were only 1 % over it, {k} or more would have a chance of {p_value:.2g} (< {ALPHA:g})",
    )


def check(run: Run) -> Result:
    ops, s = run.history.ops, run.settings
    healthy = healthy_ops(run)
    quorum = ops.quorum_ms[healthy & np.isin(ops.code, ACCEPTED)].astype(np.float64)
    quorum = quorum[~np.isnan(quorum)]
    committed = healthy & (ops.code == COMMITTED)
    commit = (ops.completed[committed] - ops.invoked[committed]) * 1000.0
    figures: dict[str, Any] = {"healthy_ops": int(healthy.sum())}
    anomalies = []
    for name, values, budget, what in (
        ("intent", quorum, s.intent_ms, "quorum_ms"),
        ("commit", commit, s.commit_ms, "invoke-to-committed"),
    ):
        found, anomaly = _judge(name, values, budget, what)
        figures.update(found)
        if anomaly:
            anomalies.append(anomaly)
    return Result(figures, anomalies)


CHECKER = Checker("latency", check, ("intent-latency", "commit-latency"))
