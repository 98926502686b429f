"""A minimal HTTP/1.1 client over asyncio streams, for the harness's calls that must be cheap: the load's
intents and the nemesis's Toxiproxy requests. Plain HTTP to 127.0.0.1, keep-alive connections, bodies
by Content-Length or chunked (or, on a closing connection, to its end). Every answer it cannot take is a
BrokenAnswer, whatever broke: the harness's loop must not meet asyncio's own stream errors from a peer
that answered an endless header, say.

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

# Bounds on an answer: whatever answers on the port (a system under test, a proxy gone wrong) cannot
# make the harness hold more than this, or hang on a line that never ends.
MAX_LINE = 16 * 1024  # the status line, a header line, a chunk's size line
MAX_HEAD = 64 * 1024  # the status line and every header line together
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024  # NATS's /jsz of a cluster and Toxiproxy's /proxies stay far below
MAX_INTERIM = 8  # 1xx answers before the final one

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class BrokenAnswer(ValueError):
    """An answer this client cannot take: not HTTP/1.x, garbled, past one of the bounds above, or cut
    short by the peer. A ValueError, as a garbled answer always was here."""


# What a request that got no usable answer raises: refused or reset, the timeout, a broken answer
# (BrokenAnswer; a caller's JSON errors are ValueErrors too).
ERRORS = (OSError, TimeoutError, ValueError)


async def exchange(
    conn: Connection,
    method: bytes,
    path: bytes,
    host: bytes,
    body: bytes | None = None,
    content_type: bytes = b"application/json",
    sent: Callable[[], object] | None = None,
    max_body: int = MAX_BODY,
) -> tuple[int, bytes, bool]:
    """One request and its answer on `conn`: status, body, and whether the connection may be used again;
    `sent` is called once the whole request is handed to the kernel. Raises BrokenAnswer for an answer it
    cannot take (a connection it raised on must not be used again), OSError when the connection fails."""
    reader, writer = conn
    head = b"%b %b HTTP/1.1\r\nhost: %b\r\n" % (method, path, host)
    if body is not None:
        head += b"content-type: %b\r\ncontent-length: %d\r\n" % (content_type, len(body))
    writer.write(head + b"\r\n" + (body or b""))
    await writer.drain()
    if sent is not None:
        sent()
    answer = _Reading(reader)
    for _ in range(MAX_INTERIM + 1):
        status, version = _status(await answer.line("the status line"))
        headers = await answer.headers("a header")
        if not 100 <= status < 200 or status == 101:
            break
    else:
        raise BrokenAnswer(f"more than {MAX_INTERIM} interim (1xx) answers before a final one")
    if status == 101:
        raise BrokenAnswer("101 Switching Protocols: not an answer this client takes")
    length, chunked, keep = _framing(headers, version)
    if status in NO_BODY:
        return status, b"", keep
    if chunked:
        return status, await answer.chunked(max_body), keep
    if length is not None:
        if length > max_body:
            raise BrokenAnswer(f"a body of {length} bytes (content-length), more than {max_body}")
        return status, await answer.exactly(length, "the body"), keep
    if not keep:  # the body runs to the end of the connection
        return status, await answer.to_end(max_body), False
    raise BrokenAnswer("an answer with neither content-length nor chunked encoding on a kept connection")


def _status(line: bytes) -> tuple[int, bytes]:
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise BrokenAnswer(f"not an HTTP/1.x answer: {line[:80]!r}")
    if not (len(parts[1]) == 3 and parts[1].isdigit()):
        raise BrokenAnswer(f"a status that is not three digits: {line[:80]!r}")
    return int(parts[1]), parts[0]


def _framing(headers: list[tuple[bytes, bytes]], version: bytes) -> tuple[int | None, bool, bool]:
    """(content-length or None, chunked, keep-alive) from an answer's headers."""
    length: int | None = None
    chunked = False
    keep = version == b"HTTP/1.1"
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise BrokenAnswer(f"content-length {value[:40]!r}: not one decimal length")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.split(b",")[-1].strip() == b"chunked"
        elif name == b"connection":
            tokens = {t.strip() for t in value.split(b",")}
            keep = b"close" not in tokens and (keep or b"keep-alive" in tokens)
    return length, chunked, keep


class _Reading:
    """One answer read off `reader`, every read bounded, every way it can break a BrokenAnswer."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.head = 0  # bytes of head (status line, headers, trailers) read so far

    async def line(self, what: str) -> bytes:
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as e:
            raise BrokenAnswer(f"{what}: no line end within {e.consumed} bytes") from None
        except asyncio.IncompleteReadError as e:
            raise BrokenAnswer(f"{what}: the connection closed {_after(e.partial)}") from None
        if len(line) > MAX_LINE:
            raise BrokenAnswer(f"{what}: a line of {len(line)} bytes, more than {MAX_LINE}")
        self.head += len(line)
        if self.head > MAX_HEAD:
            raise BrokenAnswer(f"{what}: a head of more than {MAX_HEAD} bytes")
        return line

    async def headers(self, what: str) -> list[tuple[bytes, bytes]]:
        """Header (or trailer) lines up to the empty one: (lowercased name, value)."""
        out: list[tuple[bytes, bytes]] = []
        while (line := await self.line(what)) != b"\r\n":
            name, colon, value = line.partition(b":")
            if not colon or not name.strip() or name != name.strip():
                raise BrokenAnswer(f"{what}: not a header line: {line[:80]!r}")
            out.append((name.lower(), value.strip().lower()))
            if len(out) > MAX_HEADERS:
                raise BrokenAnswer(f"{what}: more than {MAX_HEADERS} header lines")
        return out

    async def exactly(self, n: int, what: str) -> bytes:
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as e:
            raise BrokenAnswer(f"{what}: the connection closed after {len(e.partial)} of {n} bytes") from None

    async def chunked(self, max_body: int) -> bytes:
        chunks, size = [], 0
        while True:
            text = (await self.line("a chunk's size")).split(b";")[0].strip()
            if not text or len(text) > 16 or text.strip(b"0123456789abcdefABCDEF"):
                raise BrokenAnswer(f"a chunk's size: {text[:40]!r} is not hexadecimal")
            n = int(text, 16)
            if n == 0:
                break
            size += n
            if size > max_body:
                raise BrokenAnswer(f"a chunked body of more than {max_body} bytes")
            chunks.append(await self.exactly(n, "a chunk"))
            if await self.exactly(2, "a chunk's end") != b"\r\n":
                raise BrokenAnswer("a chunk not ended by CRLF")
        await self.headers("a trailer")
        return b"".join(chunks)

    async def to_end(self, max_body: int) -> bytes:
        body = bytearray()
        while len(body) <= max_body and (more := await self.reader.read(max_body + 1 - len(body))):
            body += more
        if len(body) > max_body:
            raise BrokenAnswer(f"a body (to the connection's end) of more than {max_body} bytes")
        return bytes(body)


def _after(partial: bytes) -> str:
    return f"after {len(partial)} bytes of it" if partial else "before it"


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
