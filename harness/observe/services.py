"""netsync's own view of itself: the Prometheus page each agent, the orchestrator and the projector
serve on /metrics (buffers, peers, and the process collector's RSS and open fds)."""

from __future__ import annotations

from typing import Any

import httpx

from harness.topology.system import System

METRICS = {
    "netsync_buffer_depth": "buffer_depth",
    "netsync_buffer_cap": "buffer_cap",
    "process_resident_memory_bytes": "rss_bytes",
    "process_open_fds": "open_fds",
    "netsync_peers_reachable": "peers_reachable",
    "process_start_time_seconds": "started",
}


def parse_metrics(text: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus text page that we sample."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name, _, value = line.partition(" ")
        if name in METRICS:
            try:
                out[METRICS[name]] = float(value.split()[0])
            except ValueError:
                continue
    return out


async def service_sample(http: httpx.AsyncClient, sut: System, node: str) -> dict[str, Any] | None:
    """One node's metrics; None when it does not answer (a crashed or paused node: the gap is the
    evidence)."""
    try:
        r = await http.get(f"{sut.http_url(node)}/metrics", timeout=1.0)
    except httpx.HTTPError:
        return None
    return {k: int(v) for k, v in parse_metrics(r.text).items()}
