"""The analytics role's second input: the scout's telemetry summaries from NATS, kept per agent as
the last summary said (docs/contract.md, "Telemetry")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats

from netsync.analytics_http import Metrics
from netsync.changefeed import SUMMARY_SUBJECT, summary_agents
from netsync.logs import Log
from netsync.settings import AnalyticsSettings
from netsync.untrusted import loads

BACKOFF_FIRST, BACKOFF_CAP = 0.1, 2.0


class Scout:
    def __init__(self, settings: AnalyticsSettings, log: Log, metrics: Metrics) -> None:
        self.s = settings
        self.log = log
        self.metrics = metrics
        self.nc: Any = None
        self.telemetry: dict[str, dict[str, Any]] = {}  # per agent, the last summary's figures

    @property
    def connected(self) -> bool:
        return bool(self.nc is not None and self.nc.is_connected)

    async def follow(self, stopping: asyncio.Event, pause: Callable[[float], Awaitable[None]]) -> None:
        """Subscribe to the scout's subject (core NATS: a summary sent while away is not seen) and
        keep per agent what the last summary said; nats-py reconnects for ever once connected."""

        async def on_summary(msg: Any) -> None:
            try:
                agents = summary_agents(loads(msg.data))
            except ValueError as e:
                self.metrics.telemetry_malformed.inc()
                self.log.warning(
                    "telemetry summary not understood",
                    error=str(e),
                    body=msg.data[:200].decode(errors="replace"),
                )
                return
            self.metrics.telemetry.inc()
            self.telemetry.update(agents)

        async def on_error(e: Exception) -> None:
            self.log.warning("nats error", error=repr(e))

        delay = BACKOFF_FIRST
        while self.nc is None and not stopping.is_set():
            try:
                self.nc = await nats.connect(
                    list(self.s.nats_servers),
                    name=self.s.name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=on_error,
                )
                await self.nc.subscribe(SUMMARY_SUBJECT, cb=on_summary)
                self.log.info("following telemetry", subject=SUMMARY_SUBJECT)
            except Exception as e:
                if self.nc is not None:
                    await self.nc.close()
                    self.nc = None
                self.log.warning("nats connect failed, retrying", error=repr(e), retry_in=delay)
                await pause(delay)
                delay = min(delay * 2, BACKOFF_CAP)

    async def close(self) -> None:
        if self.nc is not None:
            try:
                await asyncio.wait_for(self.nc.close(), 5)
            except Exception as e:
                self.log.warning("nats close failed", error=repr(e))
