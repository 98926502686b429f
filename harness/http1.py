"""A minimal HTTP/1.1 client over asyncio streams, for the harness's calls that must be cheap: the load's
intents and the nemesis's Toxiproxy requests. Plain HTTP to 127.0.0.1, keep-alive connections, bodies
by Content-Length or chunked (or, on a closing connection, to its end).

Why not httpx there: a request through httpx costs about 1.5 ms of the event loop's CPU on this machine
(a GET of Toxiproxy's proxies: 1.6 ms end to end, nearly all of it on the client's side), so a fault
that adds 24 toxics at once spent 25 to 60 ms in the harness itself before Toxiproxy had them
(bench/README.md, "Fault lateness"); here a request is a write and a few reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import urlsplit

NO_BODY = (204, 304)  # and 1xx: answers that never carry a body

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# What a request that got no usable answer raises: refused or reset, the timeout, a garbled answer, a
# connection closed mid-answer.
ERRORS = (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError)


async def exchange(
    conn: Connection,
    method: bytes,
    path: bytes,
    host: bytes,
    body: bytes | None = None,
    content_type: bytes = b"application/json",
    sent: Callable[[], object] | None = None,
) -> tuple[int, bytes, bool]:
    """One request and its answer on `conn`: status, body, and whether the connection may be used again;
    `sent` is called once the whole request is handed to the kernel. ValueError for an answer that is not
    HTTP/1.x; asyncio.IncompleteReadError when the peer closed."""
    reader, writer = conn
    head = b"%b %b HTTP/1.1\r\nhost: %b\r\n" % (method, path, host)
    if body is not None:
        head += b"content-type: %b\r\ncontent-length: %d\r\n" % (content_type, len(body))
    writer.write(head + b"\r\n" + (body or b""))
    await writer.drain()
    if sent is not None:
        sent()
    status_line = await reader.readuntil(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
    status = int(parts[1])
    length, chunked, keep = None, False, True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = value != b"close"
    if status in NO_BODY or 100 <= status < 200:
        return status, b"", keep
    if chunked:
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return status, b"".join(chunks), keep
    if length is not None:
        return status, await reader.readexactly(length), keep
    if not keep:  # the body runs to the end of the connection
        return status, await reader.read(), False
    raise ValueError("an answer with neither content-length nor chunked encoding on a kept connection")


class Pool:
    """Keep-alive connections to one `http://host:port`; at most `size` requests at once, the others wait.
    A connection that failed, or that the server is closing, is never used again."""

    def __init__(self, base_url: str, size: int = 8, timeout: float = 5.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"{base_url!r}: only plain http://host:port")
        self.host, self.port = url.hostname, url.port or 80
        self._host = f"{self.host}:{self.port}".encode()
        self.timeout = timeout
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)

    async def request(
        self, method: str, path: str, body: bytes | None = None, sent: Callable[[], object] | None = None
    ) -> tuple[int, bytes]:
        """`sent`: see `exchange`."""
        async with self._slots:
            conn = None
            while self._idle and conn is None:
                conn = self._idle.pop()
                if conn[0].at_eof():  # closed by the server while idle
                    conn[1].close()
                    conn = None
            keep = False
            try:
                async with asyncio.timeout(self.timeout):
                    if conn is None:
                        conn = await asyncio.open_connection(self.host, self.port)
                    status, payload, keep = await exchange(
                        conn, method.encode(), path.encode(), self._host, body, sent=sent
                    )
            finally:
                if conn is not None:
                    if keep:
                        self._idle.append(conn)
                    else:
                        conn[1].close()
            return status, payload

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
