"""Buffer limits: no sample shows a pending-commit buffer past its configured cap, and every
agent's last sample shows an empty buffer (docs/run-format.md: buffer-overflow, undrained)."""

from __future__ import annotations

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import Run


def check(run: Run) -> Result:
    configured = run.settings.buffer_cap
    anomalies: list[Anomaly] = []
    peak: dict[str, float] = {}
    for source, samples in sorted(run.samples.items()):
        with_depth = [s for s in samples if s.buffer_depth is not None]
        if not with_depth:
            continue
        peak[source] = max(s.buffer_depth for s in with_depth)
        over = [
            s
            for s in with_depth
            if s.buffer_depth > (configured if configured is not None else (s.buffer_cap or float("inf")))
        ]
        if over:
            worst = max(over, key=lambda s: s.buffer_depth)
            cap = configured if configured is not None else worst.buffer_cap
            origin = "configured" if configured is not None else "reported"
            anomalies.append(
                Anomaly(
                    "buffer-overflow",
                    f"{source}: buffer_depth {worst.buffer_depth:g} > {origin} cap {cap:g} at t={worst.t:g} "
                    f"({len(over)} sample{'s' if len(over) > 1 else ''} over, first at t={over[0].t:g})",
                )
            )
        last = with_depth[-1]
        if last.buffer_depth > 0:
            anomalies.append(
                Anomaly(
                    "undrained",
                    f"{source}: last sample (t={last.t:g}) shows buffer_depth {last.buffer_depth:g}",
                )
            )
    figures = {"buffer_cap": configured, "peak_depth": {k: int(v) for k, v in peak.items()}}
    return Result(figures, anomalies)


CHECKER = Checker(
    "buffers",
    check,
    ("buffer-overflow", "undrained"),
    waived=lambda s: "expect.buffers: ignore" if s.buffers == "ignore" else None,
)
