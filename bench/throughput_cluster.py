"""The cluster under bench/netsync_throughput.py's load: started with the contract's agent timeouts
(make_cluster), waited on until at rest (settle), replaced when it does not come back (Clusters),
and one rate measured on it (measure_rate: load, rest, commit times from the stream)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats.errors

from bench.throughput_load import GcPauses, Run, open_loop, warm_up
from bench.throughput_meters import CpuMeter, load_average, process_memory
from bench.throughput_stream import stream_last_seq, stream_store_times
from tests.integration.netsync_procs import Cluster, NatsServer, SurrealServer

# The contract's defaults, spelled out: Cluster puts the tests' generous timeouts under
# whatever `env` we pass, so these must be passed explicitly to be the ones in force.
CONTRACT_TIMEOUTS = {"NETSYNC_INTENT_TIMEOUT_MS": "80", "NETSYNC_COMMIT_TIMEOUT_MS": "400"}

SETTLE_TIMEOUT_S = 90.0  # buffers and projector caught up after a rate
MESH_TIMEOUT_S = 30.0  # agents reconnect within seconds (redial every 0.5-2 s) when they can


async def healthz(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    r = await http.get(f"{url}/healthz", timeout=2.0)
    r.raise_for_status()
    return r.json()


async def settle(
    cluster: Cluster, nats_url: str, timeout: float, mesh: bool = True
) -> tuple[float | None, str]:
    """Wait until the system is back at rest: every pending-commit buffer empty, the
    projector caught up with the stream and, with `mesh`, every agent connected to all
    its peers and to the orchestrator, so one rate's backlog or damage does not load
    the next. The seconds it took (None when the deadline passed first) and the last
    thing seen."""
    t0 = time.monotonic()
    last = "nothing answered"
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() - t0 < timeout:
            try:
                last = await rest_state(http, cluster, nats_url, mesh)
                if not last:
                    return round(time.monotonic() - t0, 2), "at rest"
            except (httpx.HTTPError, OSError, nats.errors.Error, KeyError) as e:
                last = f"{type(e).__name__}: {e}"  # an overloaded node may not answer in time
            await asyncio.sleep(0.25)
    return None, last


async def rest_state(http: httpx.AsyncClient, cluster: Cluster, nats_url: str, mesh: bool) -> str:
    """What keeps the system from being at rest, or "" when nothing does."""
    problems = []
    for name in cluster.names:
        h = await healthz(http, cluster.url(name))
        missing = set(cluster.names) - {name} - set(h["peers_connected"])
        if mesh and missing:
            problems.append(f"{name} not connected to {', '.join(sorted(missing))}")
        if mesh and not h["orchestrator_connected"]:
            problems.append(f"{name} not connected to the orchestrator")
        if h["buffer_depth"]:
            problems.append(f"{name} buffer depth {h['buffer_depth']}")
    if cluster.projector is not None:
        last = await stream_last_seq(nats_url)
        seen = (await healthz(http, cluster.url("projector")))["last_seq"]
        if seen < last:
            problems.append(f"projector at seq {seen} of {last}")
    return "; ".join(problems)


def connection_denials(cluster: Cluster) -> int:
    """How many times the agents' libp2p refused a connection for its per-peer limit, so
    far (their stderr): the mark of connections that were dropped but still counted."""
    return sum(p.stderr().count("denied by connection limits") for p in cluster.agents.values())


async def measure_rate(
    cluster: Cluster,
    nats_url: str,
    rate: float,
    seconds: float,
    tag: str,
    pids: dict[str, int],
    seed: int = 0,
) -> Run:
    """One rate: load, wait for rest, then match the 202s with their store times in the stream."""
    run = Run(rate, seconds, load_before=load_average())
    first_seq = await stream_last_seq(nats_url)
    run.memory_before = process_memory(pids)
    meter = CpuMeter(pids)
    with GcPauses() as pauses:
        await open_loop(cluster, rate, seconds, tag, run, seed)
    run.client_gc = pauses.summary()
    run.cpu = meter.percent()  # the load window only, not the settling after it
    run.load_after = load_average()
    # The 202s must be committed before the stream can tell their commit times.
    run.settle_s, run.settle_state = await settle(cluster, nats_url, SETTLE_TIMEOUT_S, mesh=False)
    run.memory_after = process_memory(pids)
    try:
        times, run.stream_dupes = await stream_store_times(nats_url, first_seq, f"{tag}-")
        run.stream_stored = len(times)
        for s in run.samples:
            s.stored_wall = times.get(s.cid)
    except (OSError, nats.errors.Error) as e:
        print(f"  (could not read the stream: {e!r}; commit latency covers 200s only)", file=sys.stderr)
    return run


def make_cluster(workdir: Path, nats_server: NatsServer, surreal: SurrealServer | None) -> Cluster:
    # Contract defaults for the agents, passed explicitly: see CONTRACT_TIMEOUTS.
    return Cluster(workdir, nats_server, 3, surreal=surreal, env=dict(CONTRACT_TIMEOUTS))


def process_pids(cluster: Cluster, nats_server: NatsServer, surreal: SurrealServer | None) -> dict[str, int]:
    """Every process whose CPU time the report shows, this one (the load client) included."""
    pids = {name: p.pid for name, p in cluster.processes.items() if p.pid is not None}
    if nats_server.pid is not None:
        pids["nats"] = nats_server.pid
    if surreal is not None and surreal.pid is not None:
        pids["surreal"] = surreal.pid
    pids["bench-client"] = os.getpid()
    return pids


class Clusters:
    """The cluster under load, replaced by a fresh one (same NATS and SurrealDB) when the
    old one does not come back to rest after a rate: agents that lost each other for
    good would make every later rate measure that damage rather than the rate. Each
    replacement is recorded with what was seen; the last cluster is stopped on exit."""

    def __init__(self, workdir: Path, nats_server: NatsServer, surreal: SurrealServer | None) -> None:
        self.workdir, self.nats, self.surreal = workdir, nats_server, surreal
        self.number = 0
        self.current: Cluster | None = None
        self.replaced: list[dict[str, Any]] = []

    def start(self, why: str, prepare: Callable[[Cluster], None] | None = None) -> Cluster:
        """A fresh cluster (the current one stopped first), warmed up and at rest."""
        self.stop()
        self.number += 1
        cluster = make_cluster(self.workdir / f"cluster-{self.number}", self.nats, self.surreal)
        if prepare is not None:
            prepare(cluster)
        print(f"starting cluster {self.number} ({why}) ...", flush=True)
        self.current = cluster.__enter__()  # stops whatever it started if it fails
        asyncio.run(warm_up(cluster))
        asyncio.run(settle(cluster, self.nats.url, MESH_TIMEOUT_S))
        return cluster

    def at_rest(self, before: str) -> Cluster:
        """The current cluster once it is at rest, else a fresh one."""
        if self.current is None:
            return self.start(before)
        took, state = asyncio.run(settle(self.current, self.nats.url, MESH_TIMEOUT_S))
        if took is not None:
            return self.current
        denials = connection_denials(self.current)
        self.replaced.append(
            {
                "cluster": self.number,
                "before": before,
                "not_at_rest_because": state,
                "libp2p_denials": denials,
            }
        )
        print(f"  cluster {self.number} not at rest after {MESH_TIMEOUT_S:g} s ({state}); replacing it")
        return self.start(f"before {before}")

    def stop(self) -> None:
        if self.current is not None:
            self.current.__exit__(None, None, None)
            self.current = None

    def __enter__(self) -> Clusters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
