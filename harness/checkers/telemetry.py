"""The scout's telemetry against what the harness saw itself (docs/run-format.md: telemetry-silent,
telemetry-mismatch): inside healthy windows each agent is in a summary at least once every three
summary intervals, and a summary's `buffer_depth_max` for an agent is near one of that agent's own
samples of the same seconds spanned. Silence inside a fault window is not judged (a partition between the
agents and the scout silences them by design) but measured: `fault_silence_s`. Not run when the run has no
telemetry.jsonl."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from harness import store
from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import Run, Sample, Summary
from harness.checkers.windows import merged, unhealthy

SILENT_INTERVALS = 3  # an agent missing from this many summary intervals in a row is silent
DEFAULT_INTERVAL_S = 1.0  # the contract's NETSYNC_TELEMETRY_INTERVAL_MS, when no summary says otherwise
DEPTH_TOLERANCE = 2  # entries: a summary's depth and a sample's may differ by this much...
DEPTH_TOLERANCE_SHARE = 0.1  # ...or by a tenth of the larger, whichever is more


def healthy_spans(run: Run, end: float) -> list[tuple[float, float]]:
    """The healthy windows within [0, end], as disjoint intervals."""
    bad = unhealthy(run.history.faults, end, run.settings.grace_s)
    spans, at = [], 0.0
    for start, stop in bad:
        if start > at:
            spans.append((at, min(start, end)))
        at = max(at, stop)
    if at < end:
        spans.append((at, end))
    return [(a, b) for a, b in spans if b > a]


def interval(summaries: list[Summary]) -> float:
    """The summary interval: the median window length (a window cut short by a restart is rare)."""
    lengths = [s.window_end - s.window_start for s in summaries if s.window_end > s.window_start]
    return statistics.median(lengths) if lengths else DEFAULT_INTERVAL_S


def fault_spans(run: Run, end: float) -> list[tuple[float, float]]:
    """The fault windows (and their grace) within [0, end]: where silence is excused, not judged."""
    return [(a, min(b, end)) for a, b in unhealthy(run.history.faults, end, run.settings.grace_s) if a < end]


def silences(covered: list[tuple[float, float]], span: tuple[float, float]) -> list[tuple[float, float]]:
    """The parts of `span` that no interval of `covered` (merged, in order) reaches."""
    out, at = [], span[0]
    for start, stop in covered:
        if stop <= at:
            continue
        if start >= span[1]:
            break
        if start > at:
            out.append((at, start))
        at = max(at, stop)
    if at < span[1]:
        out.append((at, span[1]))
    return out


def _agents(run: Run) -> dict[str, list[Sample]]:
    """The agents, by name, with their periodic samples of the buffer: the sources that report one."""
    return {
        name: [s for s in series if s.buffer_depth is not None]
        for name, series in run.samples.items()
        if any(s.buffer_depth is not None for s in series)
    }


def longest_silences(
    agents: dict[str, list[Sample]], summaries: list[Summary], spans: list[tuple[float, float]]
) -> dict[str, float]:
    """Per agent, its longest time in no summary within `spans`."""
    out: dict[str, float] = {}
    for name in sorted(agents):
        covered = merged([(s.window_start, s.window_end) for s in summaries if name in s.agents])
        out[name] = round(max((b - a for span in spans for a, b in silences(covered, span)), default=0.0), 3)
    return out


def _silent(
    agents: dict[str, list[Sample]], summaries: list[Summary], spans: list[tuple[float, float]], every: float
):
    anomalies: list[Anomaly] = []
    longest = longest_silences(agents, summaries, spans)
    for name in sorted(agents):
        covered = merged([(s.window_start, s.window_end) for s in summaries if name in s.agents])
        gaps = [
            g for span in spans for g in silences(covered, span) if g[1] - g[0] >= SILENT_INTERVALS * every
        ]
        if gaps:
            a, b = max(gaps, key=lambda g: g[1] - g[0])
            anomalies.append(
                Anomaly(
                    "telemetry-silent",
                    f"{name}: in no summary from t={a:g} to t={b:g} ({b - a:.1f} s, healthy, more than "
                    f"{SILENT_INTERVALS} intervals of {every:g} s); {len(gaps)} such silence"
                    f"{'s' if len(gaps) > 1 else ''}",
                )
            )
    return anomalies, longest


def _near(summary_depth: float, depths: np.ndarray) -> bool:
    """Whether the depth lies within the range the agent's samples spanned, give or take the tolerance:
    a buffer filling or draining passes through every depth between two readings (flapping-nats: a
    summary's 10 between samples of 27 and 0 is a reading of the drain, not a lie). And between two
    readings it may rise past the highest and fall back: at the fastest pace the readings show (their
    largest step, D per interval), by up to D/2 (nats-minority-partition: a summary's 20 beside
    readings of 0 to 17 that moved by up to 17)."""
    low, high = float(depths.min()), float(depths.max())
    overshoot = float(np.abs(np.diff(depths)).max()) / 2 if len(depths) > 1 else 0.0
    tolerance = max(DEPTH_TOLERANCE, DEPTH_TOLERANCE_SHARE * max(summary_depth, high), overshoot)
    return low - tolerance <= summary_depth <= high + tolerance


def _mismatched(
    agents: dict[str, list[Sample]], summaries: list[Summary], spans: list[tuple[float, float]], every: float
):
    anomalies: list[Anomaly] = []
    judged = 0
    for name, series in sorted(agents.items()):
        times = np.array([s.t for s in series])
        depths = np.array([s.buffer_depth for s in series], dtype=np.float64)
        step = float(np.median(np.diff(times))) if len(times) > 1 else every
        slack = every + step  # a sample as near as the sampler's and the scout's clocks allow
        wrong: list[tuple[Summary, float]] = []
        for s in summaries:
            said = s.agents.get(name)
            if said is None or said.buffer_depth_max is None:
                continue
            if not any(a <= s.window_start and s.window_end <= b for a, b in spans):
                continue
            nearby = depths[(times >= s.window_start - slack) & (times <= s.window_end + slack)]
            if not len(nearby):
                continue
            judged += 1
            if not _near(said.buffer_depth_max, nearby):
                wrong.append((s, said.buffer_depth_max))
        if wrong:
            s, said_depth = wrong[0]
            nearby = depths[(times >= s.window_start - slack) & (times <= s.window_end + slack)]
            anomalies.append(
                Anomaly(
                    "telemetry-mismatch",
                    f"{name}: {len(wrong)} healthy summar{'ies' if len(wrong) > 1 else 'y'} off its own "
                    f"samples; the first, t={s.window_start:g} to {s.window_end:g}, says buffer_depth_max "
                    f"{said_depth:g}, "
                    f"its samples from t={s.window_start - slack:g} to {s.window_end + slack:g} say "
                    f"{int(nearby.min())} to {int(nearby.max())}",
                )
            )
    return anomalies, judged


def check(run: Run) -> Result:
    summaries = run.telemetry
    if summaries is None:
        return Result({"judged": False, "why": f"no {store.TELEMETRY}: the system publishes no summaries"})
    agents = _agents(run)
    every = interval(summaries)
    spans = healthy_spans(run, run.history.end)
    silent, longest = _silent(agents, summaries, spans, every)
    mismatched, judged = _mismatched(agents, summaries, spans, every)
    figures: dict[str, Any] = {
        "summaries": len(summaries),
        "interval_s": round(every, 3),
        "healthy_s": round(sum(b - a for a, b in spans), 3),
        "longest_silence_s": longest,
        # Not judged: a scout cut from the agents cannot hear them. Shown, so that a run can tell a fault
        # that silenced an agent (scout-partition) from one that did not.
        "fault_silence_s": longest_silences(agents, summaries, fault_spans(run, run.history.end)),
        "summaries_judged": judged,
    }
    return Result(figures, silent + mismatched)


CHECKER = Checker("telemetry", check, ("telemetry-silent", "telemetry-mismatch"))
