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


# A request here is one short line and a few headers (GET /healthz, GET /metrics): bounds far above
# that, so that a client cannot hold a connection or memory by trickling or by an endless line.
MAX_LINE = 8 * 1024
MAX_HEADERS = 100
REQUEST_DEADLINE = 5.0  # for the whole request, however it trickles in
ANSWER_DEADLINE = 5.0  # for the answer to leave, to a client that does not read it
# After refusing a request not read whole, what the client still sends is read and dropped for this
# long before closing: a socket closed with unread input resets the connection, and the reset can
# destroy the refusal before the client reads it.
LINGER = 1.0


class Refused(Exception):
    """A request answered with `status` (an HTTP status line's code and reason) and closed."""

    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status = status


async def start_http(
    health: Callable[[], dict[str, Any]],
    registry: CollectorRegistry,
    port: int,
    host: str = "0.0.0.0",
    deadline: float = REQUEST_DEADLINE,
) -> asyncio.Server:
    """Listen on `port`; the reader's limit keeps a line from growing past MAX_LINE in memory."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_http(reader, writer, health, registry, deadline)

    return await asyncio.start_server(handle, host, port, limit=MAX_LINE)


async def _line(reader: asyncio.StreamReader, too_long: Refused) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:  # no end of line within the reader's limit
        raise too_long from None
    if len(line) > MAX_LINE:  # a reader made with a larger limit
        raise too_long
    return line


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """(method, path) of a request's head; Refused for one past the bounds or not HTTP/1,
    IncompleteReadError when the client leaves before its end."""
    line = await _line(reader, Refused("414 URI Too Long", f"request line over {MAX_LINE} bytes"))
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused("400 Bad Request", "expected a request line: METHOD PATH HTTP/1.x")
    too_long = Refused("431 Request Header Fields Too Large", f"header line over {MAX_LINE} bytes")
    for _ in range(MAX_HEADERS + 1):  # skipped: no request here has a body or needs a header
        if await _line(reader, too_long) in (b"\r\n", b"\n"):
            return parts[0], parts[1].split("?", 1)[0]
    raise Refused("431 Request Header Fields Too Large", f"more than {MAX_HEADERS} header lines")


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    health: Callable[[], dict[str, Any]],
    registry: CollectorRegistry,
    deadline: float = REQUEST_DEADLINE,
) -> None:
    """Answer one request on its connection, then close it."""
    ctype, linger = "application/json", False
    try:
        try:
            async with asyncio.timeout(deadline):
                method, path = await read_request(reader)
        except TimeoutError:
            raise Refused(
                "408 Request Timeout", f"the request did not arrive whole within {deadline:g} s"
            ) from None
        if method != "GET":
            status, body = "405 Method Not Allowed", b'{"error": "GET only"}'
        elif path == "/healthz":
            status, body = "200 OK", json.dumps(health()).encode()
        elif path == "/metrics":
            status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)
        else:
            status, body = "404 Not Found", b'{"error": "not found"}'
    except Refused as e:
        status, body = e.status, json.dumps({"error": str(e)}).encode()
        linger = True
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        writer.write(head.encode("latin-1") + body)
        await asyncio.wait_for(writer.drain(), ANSWER_DEADLINE)
        if linger:
            writer.write_eof()
            async with asyncio.timeout(LINGER):
                while await reader.read(64 * 1024):
                    pass
    except (TimeoutError, ConnectionError):
        writer.transport.abort()  # a client that does not read: drop what it would not take
    finally:
        writer.close()
