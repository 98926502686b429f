"""The projector's HTTP face (docs/contract.md, "Health"): its Prometheus metrics, and a minimal
asyncio server for GET /healthz and GET /metrics (the projector has no trio world to serve from)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    generate_latest,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.projected = Counter("netsync_projected", "Messages written to SurrealDB and acked", registry=r)
        self.write_failures = Counter(
            "netsync_projector_write_failures", "Failed SurrealDB writes (each retried)", registry=r
        )
        self.dead_letters = Counter(
            "netsync_projector_dead_letters",
            "Messages dead-lettered: terminated unprojected, as no write could store them",
            registry=r,
        )
        self.last_seq = Gauge(
            "netsync_projector_last_seq", "Stream seq of the last projected message", registry=r
        )
        self.nats_connected = Gauge(
            "netsync_projector_nats_connected", "1 when connected to NATS", registry=r
        )
        self.surreal_connected = Gauge(
            "netsync_projector_surreal_connected", "1 when connected to SurrealDB", registry=r
        )


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    health: Callable[[], dict[str, Any]],
    registry: CollectorRegistry,
) -> None:
    """Answer one request on its connection, then close it."""
    try:
        request = await asyncio.wait_for(reader.readline(), 5)
        while True:  # skip the headers; no request here has a body
            line = await asyncio.wait_for(reader.readline(), 5)
            if line in (b"\r\n", b"\n", b""):
                break
        parts = request.decode("latin-1").split()
        method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
        if method != "GET":
            status, ctype, body = "405 Method Not Allowed", "application/json", b'{"error": "GET only"}'
        elif path == "/healthz":
            status, ctype, body = "200 OK", "application/json", json.dumps(health()).encode()
        elif path == "/metrics":
            status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)
        else:
            status, ctype, body = "404 Not Found", "application/json", b'{"error": "not found"}'
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
