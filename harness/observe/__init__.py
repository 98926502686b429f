"""Observation: periodic samples of every process of the run and of the stream and consumer, taken on
the direct observation plane, never through Toxiproxy (samples.jsonl, docs/run-format.md): netsync's
nodes from their /metrics (`services`), NATS from its monitoring endpoint (`nats`), SurrealDB, NATS,
Toxiproxy and the harness itself from outside (`processes`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from harness.observe.nats import jetstream_sample, server_sample
from harness.observe.processes import ContainerProcesses, harness_sample
from harness.observe.services import METRICS, parse_metrics, service_sample
from harness.topology.system import System

__all__ = ["METRICS", "Sampler", "interval_for", "jetstream_sample", "parse_metrics"]

SERVICES = ("orchestrator", "projector")  # netsync's nodes besides the agents
OUTSIDE = ("nats", "surrealdb", "toxiproxy")  # seen from /proc or the engine's stats
MAX_SAMPLES = 1800  # per source over a run: longer runs sample less often


def interval_for(duration: float) -> float:
    """Seconds between samples: 1 s, or longer so a long soak keeps about MAX_SAMPLES per source."""
    return max(1.0, duration / MAX_SAMPLES)


class Sampler:
    def __init__(self, sut: System, path: Path, now: Any, interval: float = 1.0) -> None:
        self.sut = sut
        self.path = path
        self.now = now
        self.interval = interval
        self.processes = ContainerProcesses(sut, OUTSIDE)

    async def sample_once(self, http: httpx.AsyncClient, f: Any) -> None:
        t = round(self.now(), 3)
        nodes = (*self.sut.cfg.agent_names(), *SERVICES)
        got: list[Any] = await asyncio.gather(
            *(service_sample(http, self.sut, n) for n in nodes),
            jetstream_sample(http, self.sut),
            server_sample(http, self.sut),
            *(asyncio.to_thread(self.processes.sample, n) for n in OUTSIDE),
        )
        services, (js, varz), outside = (
            got[: len(nodes)],
            got[len(nodes) : len(nodes) + 2],
            got[-len(OUTSIDE) :],
        )
        records: list[tuple[str, dict[str, Any] | None]] = [*zip(nodes, services, strict=True)]
        records.append(("jetstream", js))
        for name, seen in zip(OUTSIDE, outside, strict=True):
            if name == "nats" and (varz or seen):  # varz's memory, /proc's fds
                seen = {**(seen or {}), **(varz or {})}
            records.append((name, seen))
        records.append(("harness", harness_sample()))
        for source, sample in records:
            if sample:
                f.write(json.dumps({"t": t, "source": source, **sample}) + "\n")
        f.flush()

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient() as http:
            with open(self.path, "a") as f:
                while not stop.is_set():
                    await self.sample_once(http, f)
                    try:
                        await asyncio.wait_for(stop.wait(), self.interval)
                    except TimeoutError:
                        pass
                await self.sample_once(http, f)  # the last word on every buffer
