"""The report's plots: matplotlib (Agg) rendered to SVG text, inlined into the page. Every plot
shares the run's time axis and shades each fault's window, so a reader sees what a fault did.
Series are binned (at most MAX_BINS points), so a plot's size does not grow with the run."""

from __future__ import annotations

from array import array
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
    Change,
    Fault,
    Ops,
    Sample,
)
from harness.report.drawing import (
    MAX_BINS,
    MAX_FAULTS,
    NotDrawn,
    bin_width,
    drawn,
    fault_colour,
    fault_label,
    legend,
    note,
    number,
    series,
    sources,
    span,
    usable,
    window,
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


@drawn("The timeline of faults")
def timeline(faults: Sequence[Fault], end: float) -> str:
    """One row per fault: its window, its label, and its lateness (start - scheduled)."""
    end = span(end)
    if len(faults) > MAX_FAULTS:
        note(f"{len(faults) - MAX_FAULTS} more faults not drawn (the first {MAX_FAULTS} are)")
        faults = faults[:MAX_FAULTS]
    rows = max(1, len(faults))
    fig, (ax,) = _axes(1, height=0.35 * rows + 0.8)
    for i, f in enumerate(faults):
        if (w := window(f, end)) is None:
            continue
        began, stop = w
        ax.broken_barh([(began, max(stop - began, 0.2))], (i - 0.35, 0.7), color=fault_colour(f.kind))
        late = "" if number(f.scheduled) is None else f"  late {f.start - f.scheduled:.3f} s"
        ax.text(stop + 0.2, i, fault_label(f) + late, va="center", fontsize=7, clip_on=True)
    ax.set_yticks([])
    ax.set_ylim(-0.6, rows - 0.4)
    _finish(ax, end, "faults")
    if not faults:
        ax.text(0.5, 0.5, "no faults", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("t (s since the start of the load)")
    return _svg(fig)


def _answered(ops: Ops) -> tuple[np.ndarray, np.ndarray]:
    """(when each operation was answered, its code); never answered: at its invoke."""
    done = np.where(np.isnan(ops.completed), ops.invoked, ops.completed)
    t, codes = usable("answer t", done, ops.code)
    return t, codes.astype(np.int8)


@drawn("Intents answered per second")
def intents_per_second(ops: Ops, faults: Sequence[Fault], end: float) -> str:
    end = span(end)
    w = bin_width(end)
    edges = np.arange(0.0, end + w, w)
    done, code = _answered(ops)
    if not len(done):
        raise NotDrawn("no client operation in history.jsonl")
    fig, (ax,) = _axes()
    shown = []
    for label, codes, colour in OUTCOMES:
        t = done[np.isin(code, codes)]
        if len(t):
            counts, _ = np.histogram(t, bins=edges)
            (line,) = ax.step(edges[:-1], counts / w, where="post", color=colour, lw=1)
            shown.append((line, f"{label} ({len(t)})"))
    _shade(ax, faults, end)
    _finish(ax, end, "intents/s answered")
    legend(ax, shown, loc="upper right", fontsize=7, ncols=5, frameon=False)
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


def _present(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points with a value (nan: the operation has none, as when it was not accepted)."""
    keep = ~np.isnan(values)
    return t[keep], values[keep]


@drawn("Latency")
def latency(ops: Ops, faults: Sequence[Fault], end: float, budgets: dict[str, float | None]) -> str:
    """Intent (agent-reported quorum_ms) and commit (invoke to `committed`) latency, p50 and p99."""
    end = span(end)
    w = bin_width(end)
    committed = ops.code == COMMITTED
    quorum = _present(ops.invoked, ops.quorum_ms.astype(np.float64))
    commit = _present(ops.invoked[committed], (ops.completed[committed] - ops.invoked[committed]) * 1000.0)
    rows = (
        ("intent (quorum_ms)", *usable("quorum_ms", *quorum), number(budgets.get("intent_ms"))),
        ("commit (invoke to committed)", *usable("commit ms", *commit), number(budgets.get("commit_ms"))),
    )
    if not any(len(t) for _, t, _, _ in rows):
        raise NotDrawn("no operation with a quorum_ms or a commit in history.jsonl")
    fig, axes = _axes(2)
    for ax, (name, t, values, budget) in zip(axes, rows, strict=True):
        x, p50, p99 = _binned_percentiles(t, values, w)
        shown = []
        if len(x):
            (a,) = ax.step(x, p50, where="post", color="#1f77b4", lw=1)
            (b,) = ax.step(x, p99, where="post", color="#d62728", lw=1)
            shown += [(a, "p50"), (b, "p99")]
        else:
            note(f"no {name} values")
        if budget:
            shown.append((ax.axhline(budget, color="#444", ls="--", lw=0.8), f"budget {budget:g} ms"))
        _shade(ax, faults, end)
        _finish(ax, end, f"{name}\nms")
        legend(ax, shown, loc="upper right", fontsize=7, ncols=3, frameon=False)
    return _svg(fig)


def _agents(samples: dict[str, list[Sample]]) -> list[str]:
    return sources((s for s in samples if s.startswith("agent-")), "agents")


@drawn("Pending-commit buffers")
def buffers(samples: dict[str, list[Sample]], faults: Sequence[Fault], end: float, cap: float | None) -> str:
    end = span(end)
    shown = []
    fig, (ax,) = _axes()
    for source in _agents(samples):
        t, depth = series(samples[source], "buffer_depth")
        if len(t):
            (line,) = ax.step(t, depth, where="post", lw=1)
            shown.append((line, source))
    if not shown:
        raise NotDrawn("no agent sample with a buffer_depth in samples.jsonl")
    if (cap := number(cap)) is not None:
        shown.append((ax.axhline(cap, color="#d62728", ls="--", lw=0.8), f"cap {cap:g}"))
    _shade(ax, faults, end)
    _finish(ax, end, "pending-commit\nbuffer depth")
    legend(ax, shown, loc="upper right", fontsize=7, ncols=6, frameon=False)
    return _svg(fig)


def _backlog(ax: plt.Axes, js: Sequence[Sample]) -> int:
    """The consumer's backlog (pending + ack pending) over time; the points drawn."""
    points = [(s.t, b) for s in js if (b := s.consumer_backlog) is not None]
    t, backlog = usable("consumer backlog", [p[0] for p in points], [p[1] for p in points])
    if len(t):
        ax.step(t, backlog, where="post", color="#9467bd", lw=1)
    return len(t)


@drawn("JetStream")
def jetstream(
    samples: dict[str, list[Sample]],
    faults: Sequence[Fault],
    end: float,
    max_msgs: float | None = None,
    max_bytes: float | None = None,
) -> str:
    """The stream's messages and bytes against its limits (when set), and the consumer's backlog."""
    end = span(end)
    js = samples.get("jetstream", [])
    if not js:
        raise NotDrawn("no jetstream sample in samples.jsonl")
    fig, axes = _axes(3)
    drawn_points = 0
    for ax, field, limit, colour in (
        (axes[0], "stream_msgs", number(max_msgs), "#1f77b4"),
        (axes[1], "stream_bytes", number(max_bytes), "#17becf"),
    ):
        t, values = series(js, field)
        ax.step(t, values, where="post", color=colour, lw=1)
        drawn_points += len(t)
        if limit is not None:
            line = ax.axhline(limit, color="#d62728", ls="--", lw=0.8)
            legend(ax, [(line, f"limit {limit:,.0f}")], loc="upper left", fontsize=7, frameon=False)
    drawn_points += _backlog(axes[2], js)
    if not drawn_points:
        plt.close(fig)
        raise NotDrawn("the jetstream samples hold no usable stream or consumer figure")
    for ax, label in zip(
        axes, ("stream messages", "stream bytes", "consumer pending\n+ ack pending"), strict=True
    ):
        _shade(ax, faults, end)
        _finish(ax, end, label)
    return _svg(fig)


@drawn("Memory and open files")
def resources(samples: dict[str, list[Sample]], faults: Sequence[Fault], end: float) -> str:
    """Every process's RSS and open fds, each with the leak check's fitted line over the judged span
    of each incarnation (dotted; absent when too short to judge)."""
    from harness.checkers.leak import incarnations, trend

    end = span(end)
    names = sources(
        (s for s, got in samples.items() if any(x.rss_bytes is not None for x in got)), "processes"
    )
    if not names:
        raise NotDrawn("no sample with an rss_bytes in samples.jsonl")
    fig, axes = _axes(2, height=3.2)
    colours = plt.get_cmap("tab10")
    shown = []
    for ax, field, scale in ((axes[0], "rss_bytes", 2**20), (axes[1], "open_fds", 1)):
        for i, source in enumerate(names):
            t, values = series(samples[source], field)
            if not len(t):
                continue
            colour = colours(i % 10)
            (line,) = ax.plot(t, values / scale, lw=1, color=colour)
            if ax is axes[0]:
                shown.append((line, source))
            for points in incarnations(samples[source], field):  # one line from each (re)start
                fitted = trend(points)
                if fitted is not None and all(number(x) is not None for x in fitted):
                    t0, v0, t1, v1 = fitted
                    ax.plot([t0, t1], [v0 / scale, v1 / scale], ls=":", lw=1.4, color=colour)
    for ax, label in zip(axes, ("RSS MiB", "open fds"), strict=True):
        _shade(ax, faults, end)
        _finish(ax, end, label)
    legend(axes[0], shown, loc="upper left", fontsize=7, ncols=5, frameon=False)
    return _svg(fig)


STAMP_SHIFT = 16  # a SurrealDB versionstamp's bits below its wall-clock milliseconds


def applied_times(changes: Iterable[Change]) -> tuple[np.ndarray, np.ndarray]:
    """Per `applied` change with a `t` and a versionstamp: (when it was applied, on the run's clock; when
    the store wrote its row, Unix seconds). SurrealDB 3 stamps a change with its wall clock in Unix
    milliseconds above the low 16 bits (netsync/changefeed.py, stamp_ms). Read a line at a time: two
    floats per change are kept, whatever the log's length."""
    applied, written = array("d"), array("d")
    for c in changes:
        if c.type == "applied" and c.t is not None and c.versionstamp is not None and c.versionstamp > 0:
            applied.append(c.t)
            written.append((c.versionstamp >> STAMP_SHIFT) / 1000.0)
    return np.frombuffer(applied, dtype=np.float64), np.frombuffer(written, dtype=np.float64)


def analytics_lag(
    times: tuple[np.ndarray, np.ndarray], t0_unix: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(when each change was applied, seconds behind the store's write of its row), on the run's clock,
    from `applied_times` and timings.json's t0_unix (without it, nothing); a lag below zero (clocks that
    disagree) is dropped and counted."""
    if (t0 := number(t0_unix)) is None:
        return np.array([]), np.array([])
    applied, written = times
    t, lag = usable("analytics lag", applied, applied - (written - t0))
    ahead = lag < 0
    if ahead.any():
        note(
            f"{int(ahead.sum())} changes applied before their stamp's time (clocks that disagree): not drawn"
        )
    return t[~ahead], lag[~ahead]


@drawn("Peers and stream lag")
def peers_and_lag(
    samples: dict[str, list[Sample]],
    faults: Sequence[Fault],
    end: float,
    times: tuple[np.ndarray, np.ndarray] | None = None,
    t0_unix: float | None = None,
) -> str:
    """Peers each agent reached (its last request) beside the stream's lag (the consumer backlog) and,
    when the run has analytics.jsonl (`times`: its `applied_times`), the analytics consumer's lag behind
    the store (`analytics_lag`, p50 and p99 per bin): does trouble between agents show up as lag in the
    stream, and downstream?"""
    end = span(end)
    fig, axes = _axes(3 if times is not None else 2)
    shown = []
    for source in _agents(samples):
        t, peers = series(samples[source], "peers_reachable")
        if len(t):
            (line,) = axes[0].step(t, peers, where="post", lw=1)
            shown.append((line, source))
    if not shown:
        note("no agent sample with a peers_reachable")
        axes[0].text(0.5, 0.5, "no peers_reachable samples", transform=axes[0].transAxes, ha="center")
    legend(axes[0], shown, loc="upper right", fontsize=7, ncols=6, frameon=False)
    lag = _backlog(axes[1], samples.get("jetstream", []))
    if not lag:
        note("no jetstream sample with a consumer backlog")
    labels = ["peers reachable", "stream lag\n(consumer backlog)"]
    if times is not None:
        lag += _analytics_lag(axes[2], times, t0_unix, bin_width(end))
        labels.append("analytics lag s\n(behind the store)")
    if not shown and not lag:
        plt.close(fig)
        raise NotDrawn("no agent peers_reachable and no consumer backlog in samples.jsonl")
    for ax, label in zip(axes, labels, strict=True):
        _shade(ax, faults, end)
        _finish(ax, end, label)
    return _svg(fig)


def _analytics_lag(
    ax: plt.Axes, times: tuple[np.ndarray, np.ndarray], t0_unix: float | None, w: float
) -> int:
    """The analytics lag's p50 and p99 per bin on `ax`; the points drawn."""
    t, lag = analytics_lag(times, t0_unix)
    if not len(t):
        note("no applied change with a versionstamp and a t (or no t0_unix in timings.json)")
        ax.text(0.5, 0.5, "no analytics lag", transform=ax.transAxes, ha="center")
        return 0
    x, p50, p99 = _binned_percentiles(t, lag, w)
    (a,) = ax.step(x, p50, where="post", color="#1f77b4", lw=1)
    (b,) = ax.step(x, p99, where="post", color="#d62728", lw=1)
    legend(
        ax,
        [(a, "p50"), (b, f"p99 (over the run {np.percentile(lag, 99):.3g} s)")],
        loc="upper right",
        fontsize=7,
        ncols=2,
        frameon=False,
    )
    return len(t)
