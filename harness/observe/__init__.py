"""Observation: periodic samples of every process of the run and of the stream and consumer, taken on
the direct observation plane, never through Toxiproxy (samples.jsonl, docs/run-format.md): netsync's
nodes, the analytics node among them when the topology has one, from their /metrics (`services`),
NATS from its monitoring endpoint (`nats`), SurrealDB, NATS, Toxiproxy, the harness itself and its
Locust processes from outside (`processes`); and between them, each container's death, start, pause
and unpause as the engine reports it (`events`)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.observe.events import ContainerEvents, EngineLost
from harness.observe.nats import all_jsz, cluster_fields, jetstream_fields, jetstream_sample, server_sample
from harness.observe.processes import ContainerProcesses, harness_sample, proc_sample
from harness.observe.services import METRICS, parse_metrics, service_sample
from harness.shape import ANALYTICS
from harness.topology.system import System

__all__ = ["METRICS", "EngineLost", "Sampler", "interval_for", "jetstream_sample", "parse_metrics"]

SERVICES = ("orchestrator", "projector")  # netsync's nodes besides the agents (and analytics, when present)
OUTSIDE = ("surrealdb", "toxiproxy")  # seen from /proc or the engine's stats (and every NATS node)
MAX_SAMPLES = 1800  # per source over a run: longer runs sample less often
PHASE_S = 0.5  # a round's offset from t = 0 and from each multiple of the interval


def interval_for(duration: float) -> float:
    """Seconds between samples: 1 s, or longer so a long soak keeps about MAX_SAMPLES per source."""
    return max(1.0, duration / MAX_SAMPLES)


class Sampler:
    def __init__(
        self,
        sut: System,
        path: Path,
        now: Any,
        interval: float = 1.0,
        load_pids: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.sut = sut
        self.path = path
        self.now = now
        self.interval = interval
        self.processes = ContainerProcesses(sut)
        self.load_pids = load_pids  # the load's own processes (Locust's), by source name
        self.events = ContainerEvents(sut.run_id, now, sut.run.fleet.clients())
        self._http: httpx.AsyncClient | None = None

    async def prepare(self) -> None:
        """Before t = 0: the engine's event stream open and the HTTP client built, so that the first round
        does not compete for the event loop with a fault at t = 0 (a verifying client loads the CA bundle,
        ~35 ms of blocked loop; every probe is plain HTTP on 127.0.0.1, so none is built)."""
        if self._http is None:
            await asyncio.to_thread(self.events.start)
            self._http = httpx.AsyncClient(verify=False)

    async def sample_once(self, http: httpx.AsyncClient, f: Any) -> None:
        t = round(self.now(), 3)
        probes: dict[str, Any] = {n: service_sample(http, self.sut, n) for n in self.sut.cfg.agent_names()}
        services = (*SERVICES, ANALYTICS) if self.sut.cfg.analytics else SERVICES
        probes |= {n: service_sample(http, self.sut, n) for n in services}
        jsz = asyncio.ensure_future(all_jsz(http, self.sut))  # read by the jetstream and the nodes' samples
        probes["jetstream"] = self._jetstream(jsz)
        probes |= {n: self._nats(http, n, jsz) for n in self.sut.cfg.nats_names()}
        probes |= {n: asyncio.to_thread(self.processes.sample, n) for n in OUTSIDE}
        got = await asyncio.gather(*probes.values())
        records = [*zip(probes, got, strict=True), ("harness", harness_sample())]
        records += [(name, proc_sample(pid)) for name, pid in self.load_pids().items()]
        for line in sorted(self.events.take(), key=lambda e: e["t"]):  # each at its own t, before now
            f.write(json.dumps(line) + "\n")
        for source, sample in records:
            if sample:
                f.write(json.dumps({"t": t, "source": source, **sample}) + "\n")
        f.flush()

    @staticmethod
    async def _jetstream(jsz: asyncio.Future[dict[str, Any]]) -> dict[str, Any] | None:
        return jetstream_fields(await jsz)

    async def _nats(
        self, http: httpx.AsyncClient, node: str, jsz: asyncio.Future[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """The NATS node's varz memory and connections over /proc's memory and fds, and in a cluster what
        the node says of the stream's leader, its replicas and the meta leader."""
        seen, varz, answers = await asyncio.gather(
            asyncio.to_thread(self.processes.sample, node), server_sample(http, self.sut, node), jsz
        )
        own = answers.get(node) if self.sut.cfg.nats_nodes > 1 else None
        cluster = cluster_fields(own, node) if own else {}
        return {**(seen or {}), **(varz or {}), **cluster} or None

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until `stop`; raises EngineLost when the engine goes away meanwhile (every container
        of the run went with it: nothing more is worth recording)."""
        await self.prepare()
        assert self._http is not None
        try:
            async with self._http as http:
                with open(self.path, "a") as f:
                    # A round makes every netsync node render its metrics at once, a burst of the machine's
                    # CPU: rounds fall at PHASE_S past the grid, between the whole seconds that faults are
                    # scheduled at (the load's start, `at: 8s`, a random block's intervals).
                    due = PHASE_S
                    while not stop.is_set():
                        try:
                            await asyncio.wait_for(stop.wait(), max(0.0, due - self.now()))
                            break
                        except TimeoutError:
                            pass
                        await self.sample_once(http, f)
                        self._check_engine()
                        # The next round on the grid; a round that overran skips the slots it missed.
                        due += self.interval * max(1, math.ceil((self.now() - due) / self.interval))
                    # The engine's last events first, so that the last word below holds all of them.
                    await asyncio.to_thread(self.events.stop)
                    await self.sample_once(http, f)  # the last word on every buffer
        finally:
            await asyncio.to_thread(self.events.stop)

    def _check_engine(self) -> None:
        if self.events.lost is not None:
            raise EngineLost(
                f"the Docker engine went away at t={self.events.lost_at:g}s ({self.events.lost}): "
                "it stopped or restarted, and every container of the run stopped with it"
            )
