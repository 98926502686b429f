"""The projector's HTTP server (netsync.projector_http) against a real socket, started in-process:
a request is bounded in its line lengths, its header count and its time as a whole, so a client
trickling headers or sending an endless line holds neither a connection nor memory (issue 27)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from netsync.projector_http import MAX_HEADERS, MAX_LINE, start_http

DEADLINE = 0.5  # the whole request's, shortened for the test


@contextlib.asynccontextmanager
async def server(deadline: float = DEADLINE) -> AsyncIterator[int]:
    srv = await start_http(lambda: {"name": "projector"}, CollectorRegistry(), 0, "127.0.0.1", deadline)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        await srv.wait_closed()


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send `parts` (each after `pause`), then read until the server closes: (answer, seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)

    sending = asyncio.create_task(send())
    answer = b""
    with contextlib.suppress(ConnectionResetError):  # what arrived before a reset still counts
        async with asyncio.timeout(10):
            while chunk := await reader.read(64 * 1024):
                answer += chunk
    elapsed = time.monotonic() - t0
    sending.cancel()
    writer.close()
    return answer, elapsed


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_a_plain_request_is_answered() -> None:
    async with server() as port:
        answer, _ = await exchange(port, b"GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
    assert status(answer) == 200
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"name": "projector"}


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"POST /healthz HTTP/1.1\r\n\r\n", 405),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"GET /healthz\r\n\r\n", 400),  # no version
        (b"GET /healthz SMTP/1.0\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    ],
)
async def test_other_requests_get_their_status(request_bytes: bytes, code: int) -> None:
    async with server() as port:
        answer, _ = await exchange(port, request_bytes)
    assert status(answer) == code


@pytest.mark.parametrize("size", [MAX_LINE + 1, 64 * 1024 + 1, 1024 * 1024])
async def test_a_request_line_past_the_bound_is_414(size: int) -> None:
    async with server() as port:
        answer, _ = await exchange(port, b"GET /" + b"a" * size + b" HTTP/1.1\r\n\r\n")
    assert status(answer) == 414
    assert f"{MAX_LINE}".encode() in answer


async def test_an_endless_request_line_is_refused_without_waiting_for_its_end() -> None:
    # 100 MB would be read whole by an unbounded readline: the answer comes after a few KiB.
    async with server(deadline=30) as port:
        answer, elapsed = await exchange(port, b"GET /" + b"a" * (64 * 1024), *[b"a" * (64 * 1024)] * 1600)
    assert status(answer) == 414 and elapsed < 5


async def test_a_header_line_past_the_bound_is_431() -> None:
    async with server() as port:
        answer, _ = await exchange(port, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * MAX_LINE + b"\r\n\r\n")
    assert status(answer) == 431


async def test_too_many_headers_are_431() -> None:
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    async with server() as port:
        answer, _ = await exchange(port, b"GET /healthz HTTP/1.1\r\n" + headers + b"\r\n")
        within, _ = await exchange(
            port, b"GET /healthz HTTP/1.1\r\n" + headers[: -len(b"X-100: 1\r\n")] + b"\r\n"
        )
    assert status(answer) == 431 and b"header lines" in answer
    assert status(within) == 200


async def test_a_client_trickling_headers_is_cut_off_at_the_deadline() -> None:
    # Each header line well inside any per-line timeout, the request never ending.
    trickle = [b"GET /healthz HTTP/1.1\r\n", *[b"X-Slow: 1\r\n"] * 100]
    async with server() as port:
        answer, elapsed = await exchange(port, *trickle, pause=0.05)
    assert status(answer) == 408
    assert DEADLINE <= elapsed < DEADLINE + 1.5


async def test_a_silent_client_is_cut_off_at_the_deadline() -> None:
    async with server() as port:
        answer, elapsed = await exchange(port, b"GE")
    assert status(answer) == 408 and elapsed < DEADLINE + 1.5


async def test_a_client_that_leaves_early_costs_nothing() -> None:
    async with server() as port:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost")
        writer.close()
        again, elapsed = await exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n")  # still answering
    assert status(again) == 200 and elapsed < DEADLINE
