"""NATS's monitoring endpoint: the stream's and the consumer's state (/jsz) and the server's own memory
and connections (/varz)."""

from __future__ import annotations

from typing import Any

import httpx

from harness import shape
from harness.topology.system import System


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


async def server_sample(http: httpx.AsyncClient, sut: System) -> dict[str, Any] | None:
    """nats-server's resident memory (varz `mem`) and client connections."""
    try:
        varz = (await http.get(f"{sut.nats_monitor_url}/varz", timeout=1.0)).json()
    except (httpx.HTTPError, ValueError):
        return None
    out = {}
    if isinstance(varz.get("mem"), int | float):
        out["rss_bytes"] = int(varz["mem"])
    if isinstance(varz.get("connections"), int):
        out["connections"] = varz["connections"]
    return out or None
