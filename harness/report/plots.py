"""The report's plots: matplotlib (Agg) rendered to SVG text, inlined into the page. Every plot
shares the run's time axis and shades each fault's window, so a reader sees what a fault did.
Series are binned (at most MAX_BINS points), so a plot's size does not grow with the run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from harness.checkers.run import (
    ABORTED,
    COMMITTED,
    FAILED,
    INFO,
    PENDING,
    PENDING_COMMIT,
    REJECTED,
    Fault,
    Ops,
    Sample,
)
from harness.report.drawing import (
    MAX_BINS,
    bin_width,
    fault_colour,
    fault_label,
)
from harness.report.drawing import axes as _axes
from harness.report.drawing import finish as _finish
from harness.report.drawing import shade as _shade
from harness.report.drawing import svg as _svg

__all__ = ["MAX_BINS", "bin_width", "fault_colour", "fault_label"]

OUTCOMES = (
    ("committed", (COMMITTED,), "#2ca02c"),
    ("pending-commit", (PENDING_COMMIT,), "#1f77b4"),
    ("aborted", (ABORTED,), "#ff7f0e"),
    ("rejected", (REJECTED, FAILED), "#d62728"),
    ("unknown", (INFO, PENDING), "#7f7f7f"),
)


def timeline(faults: Sequence[Fault], end: float) -> str:
    """One row per fault: its window, its label, and its lateness (start - scheduled)."""
    rows = max(1, len(faults))
    fig, (ax,) = _axes(1, height=0.35 * rows + 0.8)
    for i, f in enumerate(faults):
        stop = f.until(end)
        ax.broken_barh([(f.began, max(stop - f.began, 0.2))], (i - 0.35, 0.7), color=fault_colour(f.kind))
        late = "" if f.scheduled is None else f"  late {f.start - f.scheduled:.3f} s"
        ax.text(stop + 0.2, i, fault_label(f) + late, va="center", fontsize=7)
    ax.set_yticks([])
    ax.set_ylim(-0.6, rows - 0.4)
    _finish(ax, end, "faults")
    if not faults:
        ax.text(0.5, 0.5, "no faults", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("t (s since the start of the load)")
    return _svg(fig)


def intents_per_second(ops: Ops, faults: Sequence[Fault], end: float) -> str:
    w = bin_width(end)
    edges = np.arange(0.0, end + w, w)
    fig, (ax,) = _axes()
    done = np.where(np.isnan(ops.completed), ops.invoked, ops.completed)  # never answered: at its invoke
    for label, codes, colour in OUTCOMES:
        t = done[np.isin(ops.code, codes)]
        if len(t):
            counts, _ = np.histogram(t, bins=edges)
            ax.step(edges[:-1], counts / w, where="post", label=f"{label} ({len(t)})", color=colour, lw=1)
    _shade(ax, faults, end)
    _finish(ax, end, "intents/s answered")
    ax.legend(loc="upper right", fontsize=7, ncols=5, frameon=False)
    return _svg(fig)


def _binned_percentiles(t: np.ndarray, values: np.ndarray, w: float) -> tuple[np.ndarray, ...]:
    """Per bin of `t`: (bin start, p50, p99) of the values in it."""
    keep = ~np.isnan(values)
    t, values = t[keep], values[keep]
    if not len(t):
        return np.array([]), np.array([]), np.array([])
    bins = np.floor(t / w).astype(np.int64)
    order = np.argsort(bins, kind="stable")
    bins, values = bins[order], values[order]
    cuts = np.flatnonzero(np.diff(bins)) + 1
    starts = np.concatenate(([0], cuts))
    groups = np.split(values, cuts)
    p50 = np.array([np.percentile(g, 50) for g in groups])
    p99 = np.array([np.percentile(g, 99) for g in groups])
    return bins[starts] * w, p50, p99


def latency(ops: Ops, faults: Sequence[Fault], end: float, budgets: dict[str, float | None]) -> str:
    """Intent (agent-reported quorum_ms) and commit (invoke to `committed`) latency, p50 and p99."""
    w = bin_width(end)
    fig, axes = _axes(2)
    committed = ops.code == COMMITTED
    series = (
        ("intent (quorum_ms)", ops.invoked, ops.quorum_ms.astype(np.float64), budgets.get("intent_ms")),
        (
            "commit (invoke to committed)",
            ops.invoked[committed],
            (ops.completed[committed] - ops.invoked[committed]) * 1000.0,
            budgets.get("commit_ms"),
        ),
    )
    for ax, (name, t, values, budget) in zip(axes, series, strict=True):
        x, p50, p99 = _binned_percentiles(t, values, w)
        ax.step(x, p50, where="post", label="p50", color="#1f77b4", lw=1)
        ax.step(x, p99, where="post", label="p99", color="#d62728", lw=1)
        if budget:
            ax.axhline(budget, color="#444", ls="--", lw=0.8, label=f"budget {budget:g} ms")
        _shade(ax, faults, end)
        _finish(ax, end, f"{name}\nms")
        ax.legend(loc="upper right", fontsize=7, ncols=3, frameon=False)
    return _svg(fig)


def _series(samples: Iterable[Sample], field: str) -> tuple[list[float], list[float]]:
    points = [(s.t, getattr(s, field)) for s in samples if getattr(s, field, None) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def buffers(samples: dict[str, list[Sample]], faults: Sequence[Fault], end: float, cap: float | None) -> str:
    fig, (ax,) = _axes()
    for source in sorted(s for s in samples if s.startswith("agent-")):
        t, depth = _series(samples[source], "buffer_depth")
        if t:
            ax.step(t, depth, where="post", label=source, lw=1)
    if cap is not None:
        ax.axhline(cap, color="#d62728", ls="--", lw=0.8, label=f"cap {cap:g}")
    _shade(ax, faults, end)
    _finish(ax, end, "pending-commit\nbuffer depth")
    ax.legend(loc="upper right", fontsize=7, ncols=6, frameon=False)
    return _svg(fig)


def _backlog(ax: plt.Axes, js: Sequence[Sample]) -> None:
    """The consumer's backlog (pending + ack pending) over time."""
    backlog = [(s.t, s.consumer_backlog) for s in js if s.consumer_backlog is not None]
    ax.step([p[0] for p in backlog], [p[1] for p in backlog], where="post", color="#9467bd", lw=1)


def jetstream(
    samples: dict[str, list[Sample]],
    faults: Sequence[Fault],
    end: float,
    max_msgs: float | None = None,
    max_bytes: float | None = None,
) -> str:
    """The stream's messages and bytes against its limits (when set), and the consumer's backlog."""
    fig, axes = _axes(3)
    js = samples.get("jetstream", [])
    for ax, field, limit, colour in (
        (axes[0], "stream_msgs", max_msgs, "#1f77b4"),
        (axes[1], "stream_bytes", max_bytes, "#17becf"),
    ):
        t, values = _series(js, field)
        ax.step(t, values, where="post", color=colour, lw=1)
        if limit is not None:
            ax.axhline(limit, color="#d62728", ls="--", lw=0.8, label=f"limit {limit:,.0f}")
            ax.legend(loc="upper left", fontsize=7, frameon=False)
    _backlog(axes[2], js)
    for ax, label in zip(
        axes, ("stream messages", "stream bytes", "consumer pending\n+ ack pending"), strict=True
    ):
        _shade(ax, faults, end)
        _finish(ax, end, label)
    return _svg(fig)


def resources(samples: dict[str, list[Sample]], faults: Sequence[Fault], end: float) -> str:
    """Every process's RSS and open fds, each with the leak check's fitted line over the judged span
    of each incarnation (dotted; absent when too short to judge)."""
    from harness.checkers.leak import incarnations, trend

    fig, axes = _axes(2, height=3.2)
    sources = sorted(s for s, got in samples.items() if any(x.rss_bytes is not None for x in got))
    colours = plt.get_cmap("tab10")
    for ax, field, scale in ((axes[0], "rss_bytes", 2**20), (axes[1], "open_fds", 1)):
        for i, source in enumerate(sources):
            t, values = _series(samples[source], field)
            if not t:
                continue
            colour = colours(i % 10)
            ax.plot(t, [v / scale for v in values], lw=1, color=colour, label=source)
            for points in incarnations(samples[source], field):  # one line from each (re)start
                line = trend(points)
                if line is not None:
                    t0, v0, t1, v1 = line
                    ax.plot([t0, t1], [v0 / scale, v1 / scale], ls=":", lw=1.4, color=colour)
    for ax, label in zip(axes, ("RSS MiB", "open fds"), strict=True):
        _shade(ax, faults, end)
        _finish(ax, end, label)
    if sources:
        axes[0].legend(loc="upper left", fontsize=7, ncols=5, frameon=False)
    return _svg(fig)


def peers_and_lag(samples: dict[str, list[Sample]], faults: Sequence[Fault], end: float) -> str:
    """Peers each agent reached (its last request) beside the stream's lag (the consumer backlog):
    does trouble between agents show up as lag in the stream?"""
    fig, axes = _axes(2)
    shown = False
    for source in sorted(s for s in samples if s.startswith("agent-")):
        t, peers = _series(samples[source], "peers_reachable")
        if t:
            axes[0].step(t, peers, where="post", label=source, lw=1)
            shown = True
    if not shown:
        axes[0].text(0.5, 0.5, "no peers_reachable samples", transform=axes[0].transAxes, ha="center")
    else:
        axes[0].legend(loc="upper right", fontsize=7, ncols=6, frameon=False)
    _backlog(axes[1], samples.get("jetstream", []))
    for ax, label in zip(axes, ("peers reachable", "stream lag\n(consumer backlog)"), strict=True):
        _shade(ax, faults, end)
        _finish(ax, end, label)
    return _svg(fig)
