"""The scout's summaries as the run saw them: subscribed on NATS (directly, not through a proxied
link, so that a fault on the system's links does not blind the harness) from t = 0 until the
drain, each written to telemetry.jsonl as it arrives, its window placed on the run's clock
(docs/run-format.md, "analytics.jsonl and telemetry.jsonl")."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats

from harness.shape import TELEMETRY_SUBJECT

MAX_SUMMARY_BYTES = 1 << 20  # a summary larger than this is not a summary of a few agents


def summary_line(data: bytes, subject: str, now: float, unix_now: float) -> dict[str, Any] | None:
    """The telemetry.jsonl line of one message, its window moved from Unix time to the run's clock;
    None for a message that is not a summary (bad JSON, not an object, no numeric window)."""
    if len(data) > MAX_SUMMARY_BYTES:
        return None
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("agents", {}), dict):
        return None
    window = [body.get("window_start"), body.get("window_end")]
    if not all(isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) for w in window):
        return None
    offset = unix_now - now  # Unix time at the run's t = 0, as of this instant
    line: dict[str, Any] = {
        "t": round(now, 6),
        "subject": subject,
        "window_start": round(window[0] - offset, 6),
        "window_end": round(window[1] - offset, 6),
        "agents": body.get("agents", {}),
    }
    if isinstance(body.get("messages"), int) and not isinstance(body.get("messages"), bool):
        line["messages"] = body["messages"]
    return line


class TelemetryTap:
    def __init__(self, servers: list[str], path: Path, now: Callable[[], float]) -> None:
        self.servers = servers
        self.path = path
        self.now = now
        self.kept = 0
        self.refused = 0  # messages on the subject that were not summaries

    async def run(self, stop: asyncio.Event) -> None:
        with open(self.path, "w", encoding="utf-8") as out:

            async def on_message(msg: Any) -> None:
                line = summary_line(msg.data, msg.subject, self.now(), time.time())
                if line is None:
                    self.refused += 1
                    return
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
                out.flush()
                self.kept += 1

            async def quiet(_e: Exception) -> None:
                pass  # NATS killed or paused by a fault: the client reconnects, the gap is the fault's

            nc = await self._connect(stop, quiet)
            if nc is None:
                return
            try:
                await nc.subscribe(TELEMETRY_SUBJECT, cb=on_message)
                await stop.wait()
            finally:
                try:
                    await asyncio.wait_for(nc.close(), 2)
                except (TimeoutError, nats.errors.Error):
                    pass

    async def _connect(self, stop: asyncio.Event, quiet: Callable[[Exception], Any]) -> nats.NATS | None:
        """Connected, retried while NATS is down at the start (a fault at t = 0); None if the run ends
        first."""
        while not stop.is_set():
            try:
                return await nats.connect(
                    self.servers,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=quiet,
                )
            except (OSError, TimeoutError, nats.errors.Error):
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except TimeoutError:
                    pass
        return None
