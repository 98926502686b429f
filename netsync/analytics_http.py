"""The analytics role's HTTP face: its Prometheus metrics, and one GET per connection with the
projector's bounds (netsync.projector_http) on /healthz, /metrics, /applied, /view, /telemetry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from netsync.projector_http import ANSWER_DEADLINE, MAX_LINE, REQUEST_DEADLINE, Refused, read_request

# path -> (status line, content type, body)
Route = Callable[[str], tuple[str, str, bytes]]


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        self.applied = Counter("netsync_analytics_applied", "Changes applied (new cids)", registry=r)
        self.duplicates = Counter(
            "netsync_analytics_duplicates", "Changes read again for a cid already applied", registry=r
        )
        self.stale = Counter(
            "netsync_analytics_stale", "Changes applied below the view's stream_seq for their key", registry=r
        )
        self.late = Counter(
            "netsync_analytics_late",
            "Changes found by reading the feed again, below a cursor that had passed their stamp",
            registry=r,
        )
        self.gaps = Counter("netsync_analytics_gaps", "Gaps reported, by kind", ["kind"], registry=r)
        self.cursor = Gauge("netsync_analytics_cursor", "The cursor: next versionstamp to read", registry=r)
        self.lag_s = Gauge(
            "netsync_analytics_lag_seconds", "Age of the last page read while behind", registry=r
        )
        self.lag_vs = Gauge(
            "netsync_analytics_lag_versionstamps",
            "The server's clock as a versionstamp minus the cursor",
            registry=r,
        )
        self.store_rows = Gauge(
            "netsync_analytics_store_rows", "Rows of the table at the last check", registry=r
        )
        self.view_keys = Gauge("netsync_analytics_view_keys", "Keys in the view", registry=r)
        self.telemetry = Counter(
            "netsync_analytics_telemetry", "Scout summaries taken into the view", registry=r
        )
        self.telemetry_malformed = Counter(
            "netsync_analytics_telemetry_malformed",
            "Messages on the scout's subject that are no summary",
            registry=r,
        )
        self.surreal_connected = Gauge(
            "netsync_analytics_surreal_connected", "1 when connected to SurrealDB", registry=r
        )


async def start_http(route: Route, port: int, host: str = "0.0.0.0") -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve(reader, writer, route)

    return await asyncio.start_server(handle, host, port, limit=MAX_LINE)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, route: Route) -> None:
    """Answer one request on its connection, then close it."""
    try:
        try:
            async with asyncio.timeout(REQUEST_DEADLINE):
                method, path = await read_request(reader)
            if method != "GET":
                status, ctype, body = "405 Method Not Allowed", "application/json", b'{"error": "GET only"}'
            else:
                status, ctype, body = route(path)
        except TimeoutError:
            status, ctype, body = "408 Request Timeout", "application/json", b'{"error": "request too slow"}'
        except Refused as e:
            status, ctype, body = e.status, "application/json", json.dumps({"error": str(e)}).encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        await asyncio.wait_for(writer.drain(), ANSWER_DEADLINE)
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        writer.transport.abort()
    finally:
        writer.close()
