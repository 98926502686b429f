"""Observation: periodic samples of the agents' buffers and health and of the stream
and consumer state, taken on the direct observation plane (samples.jsonl)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from harness import shape
from harness.topology.system import System

METRICS = {
    "netsync_buffer_depth": "buffer_depth",
    "netsync_buffer_cap": "buffer_cap",
    "process_resident_memory_bytes": "rss_bytes",
    "process_open_fds": "open_fds",
    "netsync_peers_reachable": "peers_reachable",
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


async def agent_sample(http: httpx.AsyncClient, sut: System, agent: str) -> dict[str, Any] | None:
    try:
        r = await http.get(f"{sut.http_url(agent)}/metrics", timeout=1.0)
    except httpx.HTTPError:
        return None  # a crashed or paused agent: no sample, the gap is the evidence
    m = parse_metrics(r.text)
    return {k: int(v) for k, v in m.items()}


async def jetstream_sample(http: httpx.AsyncClient, sut: System, stream: str = shape.STREAM) -> dict | None:
    try:
        r = await http.get(f"{sut.nats_monitor_url}/jsz?streams=true&consumers=true", timeout=1.0)
        data = r.json()
    except (httpx.HTTPError, ValueError):
        return None
    for account in data.get("account_details", []):
        for s in account.get("stream_detail", []):
            if s.get("name") != stream:
                continue
            state = s.get("state", {})
            out = {"stream_msgs": state.get("messages", 0), "stream_bytes": state.get("bytes", 0)}
            for c in s.get("consumer_detail") or []:
                if c.get("name") == shape.CONSUMER:
                    out["consumer_num_pending"] = c.get("num_pending", 0)
                    out["consumer_num_ack_pending"] = c.get("num_ack_pending", 0)
            return out
    return None


class Sampler:
    def __init__(self, sut: System, path: Path, now: Any, interval: float = 1.0) -> None:
        self.sut = sut
        self.path = path
        self.now = now
        self.interval = interval

    async def sample_once(self, http: httpx.AsyncClient, f: Any) -> None:
        t = round(self.now(), 3)
        agents = self.sut.cfg.agent_names()
        results = await asyncio.gather(*(agent_sample(http, self.sut, a) for a in agents))
        for agent, s in zip(agents, results, strict=True):
            if s is not None:
                rec = {"t": t, "source": agent, **s}
                f.write(json.dumps(rec) + "\n")
        js = await jetstream_sample(http, self.sut)
        if js is not None:
            rec = {"t": t, "source": "jetstream", **js}
            f.write(json.dumps(rec) + "\n")
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
