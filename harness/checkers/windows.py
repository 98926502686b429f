"""Fault windows and healthy windows (docs/run-format.md): a healthy window is time with no active
fault, starting `recovery_grace_s` after the last fault stopped."""

from __future__ import annotations

import numpy as np

from harness.checkers.run import Fault


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of closed intervals, as disjoint intervals in order."""
    out: list[tuple[float, float]] = []
    for start, stop in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], stop))
        else:
            out.append((start, stop))
    return out


def unhealthy(faults: list[Fault], end: float, grace: float) -> list[tuple[float, float]]:
    """Each fault's window, from when the nemesis set about it to its stop plus the grace period,
    merged. A fault with no stop is active until the end of the history, so nothing after its start
    is healthy."""
    return merged([(f.began, (f.stop + grace) if f.stop is not None else np.inf) for f in faults])


def healthy_mask(times: np.ndarray, faults: list[Fault], end: float, grace: float) -> np.ndarray:
    """For each time, whether it lies in a healthy window."""
    bad = unhealthy(faults, end, grace)
    if not bad:
        return np.ones(len(times), dtype=bool)
    starts = np.array([b[0] for b in bad])
    stops = np.array([b[1] for b in bad])
    i = np.searchsorted(starts, times, side="right") - 1  # the last bad window starting at or before t
    inside = (i >= 0) & (times <= stops[np.maximum(i, 0)])
    return ~inside


def p99(values: np.ndarray) -> float | None:
    """The nearest-rank 99th percentile (the smallest value with 99 % of the values at or below it)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None
    rank = int(np.ceil(0.99 * len(values)))
    return float(np.partition(values, rank - 1)[rank - 1])
