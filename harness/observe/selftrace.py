"""Where the harness's own Python memory grows: with SOLAR_CHAOS_TRACEMALLOC=1 in its environment, a run
traces its allocations (tracemalloc), takes a snapshot when the leak check's warm-up ends and another at
the load's end, and writes the sites that grew most between them to tracemalloc.txt in the run
directory (docs/operations.md, "The harness's own memory"). Tracing costs memory of its own, so the
`harness` RSS of such a run is not the figure to quote."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from pathlib import Path

from harness.checkers.leak import WARMUP_S, WARMUP_SHARE

ENV = "SOLAR_CHAOS_TRACEMALLOC"
FRAMES = 8  # of each allocation's stack kept: enough to reach the harness's own code from a library's
TOP = 25


class SelfTrace:
    def __init__(self, out: Path) -> None:
        self.on = os.environ.get(ENV) == "1"
        self.path = out / "tracemalloc.txt"
        self.base: tracemalloc.Snapshot | None = None

    def start(self) -> None:
        if self.on and not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)

    async def mark_after_warmup(self, duration: float) -> None:
        """The baseline: when the leak check starts judging a run of `duration` seconds."""
        if self.on:
            await asyncio.sleep(max(WARMUP_S, WARMUP_SHARE * duration))
            self.mark()

    def mark(self) -> None:
        if self.on and tracemalloc.is_tracing():
            self.base = tracemalloc.take_snapshot()

    def finish(self) -> None:
        if not self.on or self.base is None or not tracemalloc.is_tracing():
            return
        now = tracemalloc.take_snapshot()
        keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
        base, now = self.base.filter_traces(keep), now.filter_traces(keep)
        diff = now.compare_to(base, "traceback")
        total_then = sum(s.size for s in base.statistics("filename"))
        total_now = sum(s.size for s in now.statistics("filename"))
        lines = [
            f"traced Python memory: {total_then:,} bytes at the warm-up's end, {total_now:,} at the end "
            f"({total_now - total_then:+,})",
            f"the {TOP} stacks that grew most:",
        ]
        for stat in diff[:TOP]:
            lines.append(
                f"\n{stat.size_diff:+,} bytes, {stat.count_diff:+,} blocks (now {stat.size:,} bytes)"
            )
            lines += [f"    {frame}" for frame in stat.traceback.format()]
        self.path.write_text("\n".join(lines) + "\n")
        tracemalloc.stop()
