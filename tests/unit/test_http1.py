"""harness.http1 against a real TCP server on 127.0.0.1 that answers with canned bytes: every way an
HTTP/1.1 answer may frame its body, a request's own bytes, connection reuse and its refusal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from harness.http1 import Pool, exchange

Answer = Callable[[bytes], bytes]  # the request's bytes -> the answer's


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request as a test server reads it: the head, then as many bytes as its content-length says."""
    head = await reader.readuntil(b"\r\n\r\n")
    lengths = (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    return head + await reader.readexactly(next(lengths, 0))


async def _serve(answer: Answer, seen: list[bytes], conns: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        try:
            while True:
                request = await read_request(reader)
                seen.append(request)
                out = answer(request)
                writer.write(out)
                await writer.drain()
                if b"connection: close" in out.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Answer], tuple[str, list[bytes], list[int]]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> tuple[str, list[bytes], list[int]]:
        seen: list[bytes] = []
        conns: list[int] = []
        srv = await _serve(answer, seen, conns)
        servers.append(srv)
        port = srv.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}", seen, conns

    yield start  # type: ignore[misc]
    for srv in servers:
        srv.close()
        await srv.wait_closed()


BODY = b'{"name":"agent-1>agent-2"}'


@pytest.mark.parametrize(
    "answer, body, keep",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(BODY), BODY), BODY, True),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"
            + BODY[:5]
            + b"\r\n"
            + b"%x\r\n" % (len(BODY) - 5)
            + BODY[5:]
            + b"\r\n0\r\n\r\n",
            BODY,
            True,
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True),
        (
            b"HTTP/1.1 409 Conflict\r\nContent-Length: 9\r\nConnection: close\r\n\r\nconflict\n",
            b"conflict\n",
            False,
        ),
        (b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n" + BODY, BODY, False),
    ],
    ids=["content-length", "chunked", "204", "close after", "to the end"],
)
async def test_every_framing_of_an_answer_is_read_whole(
    server, answer: bytes, body: bytes, keep: bool
) -> None:
    url, seen, _ = await server(lambda request: answer)
    conn = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    try:
        status, got, kept = await exchange(conn, b"POST", b"/proxies/x/toxics", b"h:1", b'{"a":1}')
    finally:
        conn[1].close()
    assert (status, got, kept) == (int(answer.split()[1]), body, keep)
    assert seen[0].startswith(b"POST /proxies/x/toxics HTTP/1.1\r\nhost: h:1\r\n")
    assert seen[0].endswith(b'content-length: 7\r\n\r\n{"a":1}')


async def test_an_answer_that_is_not_http_is_refused(server) -> None:
    url, _, _ = await server(lambda request: b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ValueError, match="not an HTTP/1.x answer"):
        await Pool(url).request("GET", "/")


async def test_the_pool_reuses_a_kept_connection_and_never_a_closed_one(server) -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull",
        ]
    )
    url, seen, conns = await server(lambda request: next(answers))
    pool = Pool(url)
    try:
        assert await pool.request("GET", "/proxies") == (200, b"{}")
        assert await pool.request("GET", "/proxies") == (200, b"[]")  # same connection, then closed
        assert await pool.request("DELETE", "/proxies/a/toxics/b") == (200, b"null")  # a new one
    finally:
        await pool.aclose()
    assert len(seen) == 3 and len(conns) == 2
    assert seen[2].startswith(b"DELETE /proxies/a/toxics/b HTTP/1.1\r\n")
    assert b"content-length" not in seen[2]  # no body, no length


async def test_a_silent_server_times_out(server) -> None:
    url, _, _ = await server(lambda request: b"")  # reads the request, never answers
    with pytest.raises(TimeoutError):
        await Pool(url, timeout=0.2).request("GET", "/")


async def test_sent_is_called_once_the_request_is_out_before_any_answer(server) -> None:
    """The repeat fault's `t`: its first repost sent, not answered."""
    url, seen, _ = await server(lambda request: b"")  # never answers
    calls: list[int] = []
    pool = Pool(url, timeout=0.3)
    with pytest.raises(TimeoutError):
        await pool.request("POST", "/intents", b'{"key": "k"}', sent=lambda: calls.append(len(seen)))
    assert calls and len(seen) == 1 and seen[0].endswith(b'{"key": "k"}')


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(ValueError, match="only plain http"):
        Pool("https://127.0.0.1:8474")
