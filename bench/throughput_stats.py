"""The figures of bench/netsync_throughput.py and its budgets: percentiles, one rate's summary and
its verdict against the budgets (intent p99, commit p99, failures), the run cut into windows, and
the breaking point over all rates."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from bench.throughput_load import Run, Sample

INTENT_P99_BUDGET_MS = 100.0
COMMIT_P99_BUDGET_MS = 500.0
FAILURE_BUDGET = 0.01  # aborted + rejected + errors, as a share of the requests
OUTCOMES = ("committed", "pending-commit", "aborted", "rejected", "error")
OTHERS_NOTE_PERCENT = 20  # CPU (of 100 % per core) used by others that a break's "why" mentions


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
