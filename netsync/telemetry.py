"""Telemetry: agents publish peer-health over libp2p pubsub; the orchestrator's scout
summarises each interval's burst into one NATS message on
`root.solar.telemetry.peer-health` (docs/contract.md, "Telemetry").

Floodsub rather than gossipsub: a handful of peers, all reached through one proxy
address, would trip gossipsub's IP-diversity (eclipse) protection.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.pubsub.floodsub import PROTOCOL_ID as FLOODSUB
from libp2p.pubsub.floodsub import FloodSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from netsync.untrusted import loads

TOPIC = "root-solar/telemetry/1.0.0"
SUMMARY_SUBJECT = "root.solar.telemetry.peer-health"


@asynccontextmanager
async def pubsub(host: IHost) -> AsyncIterator[Pubsub]:
    ps = Pubsub(host, FloodSub([FLOODSUB]))
    async with background_trio_service(ps):
        await ps.wait_until_ready()
        yield ps


async def publish_health(ps: Pubsub, interval: float, sample: Callable[[], dict[str, Any]]) -> None:
    """An agent's side: one peer-health message per interval."""
    while True:
        try:
            await ps.publish(TOPIC, json.dumps(sample(), separators=(",", ":")).encode())
        except Exception:
            pass  # telemetry is best effort; the next interval tries again
        await trio.sleep(interval)


def decode(data: bytes) -> dict[str, Any] | None:
    """A peer's health sample, or None for anything else on the topic. Any peer can publish there,
    so neither bad JSON nor JSON that is not an object may take the scout (and its orchestrator) down."""
    try:
        sample = loads(data)
    except ValueError:  # also bytes that are not UTF-8, and nesting too deep
        return None
    return sample if isinstance(sample, dict) else None


@dataclass
class Window:
    start: float = field(default_factory=time.time)
    messages: int = 0
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, msg: dict[str, Any]) -> None:
        name = str(msg.get("agent", "?"))
        self.messages += 1
        a = self.agents.setdefault(
            name,
            {"samples": 0, "peers_reachable_min": None, "buffer_depth_max": 0, "nats_reachable_last": None},
        )
        a["samples"] += 1
        peers = msg.get("peers_reachable")
        if isinstance(peers, int):
            a["peers_reachable_min"] = (
                peers if a["peers_reachable_min"] is None else min(a["peers_reachable_min"], peers)
            )
        depth = msg.get("buffer_depth")
        if isinstance(depth, int):
            a["buffer_depth_max"] = max(a["buffer_depth_max"], depth)
        if "nats_reachable" in msg:
            a["nats_reachable_last"] = bool(msg["nats_reachable"])

    def summary(self, end: float) -> dict[str, Any]:
        return {
            "window_start": self.start,
            "window_end": end,
            "messages": self.messages,
            "agents": self.agents,
        }


class Scout:
    """The orchestrator's side: collect, and once per interval hand a summary to `emit`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.window = Window()

    async def collect(self, ps: Pubsub) -> None:
        sub = await ps.subscribe(TOPIC)
        while True:
            msg = await sub.get()
            if (sample := decode(msg.data)) is not None:
                self.window.add(sample)

    async def summarise(self, emit: Callable[[dict[str, Any]], Any]) -> None:
        while True:
            await trio.sleep(self.interval)
            window, self.window = self.window, Window()
            if window.messages:
                try:
                    await emit(window.summary(time.time()))
                except Exception:
                    pass  # NATS down: this window's summary is dropped, not queued
