"""harness.http1 against answers a broken or hostile peer gives: an endless header, too many headers, a
body past its bound, a connection closed mid-answer. Each is a BrokenAnswer (one of http1.ERRORS, which
its callers catch), never asyncio's own stream errors; the load's workers and the Toxiproxy client live on."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from harness import http1
from harness.history import History
from harness.http1 import MAX_BODY, BrokenAnswer, Pool, exchange
from harness.load import Load, LoadPlan
from harness.toxiproxy import Toxiproxy, ToxiproxyError
from tests.unit.test_http1 import read_request

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


async def _serve(answers: Callable[[int], bytes], close_first: bool) -> asyncio.Server:
    """Reads each request's head and body, writes `answers(n)` for the n-th request (0 on); closes the
    connection after the first answer with `close_first`, and after an empty one."""
    count = iter(range(1_000_000))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_request(reader)
                n = next(count)
                out = answers(n)
                writer.write(out)
                await writer.drain()
                if not out or (close_first and n == 0):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., str]]:
    servers: list[asyncio.Server] = []

    async def start(answers: Callable[[int], bytes], close_first: bool = False) -> str:
        srv = await _serve(answers, close_first)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start  # type: ignore[misc]
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def head(*lines: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines)


BROKEN = {
    "a header line past the stream's limit": head(b"x-big: " + b"a" * 200_000) + b"\r\n",
    "a header line past MAX_LINE": head(b"x-big: " + b"a" * 20_000, b"content-length: 2") + b"\r\n{}",
    "a status line past the limit": b"HTTP/1.1 200 " + b"O" * 100_000 + b"\r\n\r\n",
    "too many headers": head(*(b"x-%d: 1" % i for i in range(150)), b"content-length: 2") + b"\r\n{}",
    "a head past MAX_HEAD": head(*(b"x-%d: " % i + b"a" * 1000 for i in range(90))) + b"\r\n",
    "a content-length past MAX_BODY": head(b"content-length: %d" % (MAX_BODY + 1)) + b"\r\n",
    "a content-length that is not a number": head(b"content-length: 2x") + b"\r\n{}",
    "a negative content-length": head(b"content-length: -1") + b"\r\n{}",
    "two content-lengths": head(b"content-length: 2", b"content-length: 3") + b"\r\n{}",
    "a chunk size that is not hexadecimal": head(b"transfer-encoding: chunked")
    + b"\r\nzz\r\n{}\r\n0\r\n\r\n",
    "a negative chunk size": head(b"transfer-encoding: chunked") + b"\r\n-2\r\n{}\r\n0\r\n\r\n",
    "a chunk not ended by CRLF": head(b"transfer-encoding: chunked") + b"\r\n2\r\n{}XX0\r\n\r\n",
    "a status of four digits": b"HTTP/1.1 2000 OK\r\ncontent-length: 2\r\n\r\n{}",
    "a status that is not a number": b"HTTP/1.1 abc OK\r\ncontent-length: 2\r\n\r\n{}",
    "a header line without a colon": head(b"content-length 2") + b"\r\n{}",
    "not HTTP": b"SSH-2.0-OpenSSH\r\n\r\n",
    "closed before the answer": b"",
    "closed inside the head": b"HTTP/1.1 200 OK\r\ncontent-len",
    "closed inside the body": head(b"content-length: 10") + b"\r\n{}",
    "endless interim answers": b"HTTP/1.1 100 Continue\r\n\r\n" * 20,
}


@pytest.mark.parametrize("answer", list(BROKEN.values()), ids=list(BROKEN))
async def test_a_broken_answer_is_a_broken_answer_and_the_pool_goes_on(serve, answer: bytes) -> None:
    url = await serve(lambda n: answer if n == 0 else OK, close_first=True)
    pool = Pool(url, size=1, timeout=5.0)
    try:
        with pytest.raises(BrokenAnswer) as broken:
            await pool.request("POST", "/intents", b'{"key": "k"}')
        assert isinstance(broken.value, http1.ERRORS)
        assert len(str(broken.value)) < 300  # says what broke, without echoing the whole answer
        assert await pool.request("GET", "/") == (200, b"{}")  # a fresh connection, not the broken one
    finally:
        await pool.aclose()


async def test_a_body_to_the_connections_end_is_bounded(serve) -> None:
    url = await serve(lambda n: b"HTTP/1.0 200 OK\r\n\r\n" + b"a" * 5000)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    try:
        with pytest.raises(BrokenAnswer, match="more than 4096 bytes"):
            await exchange((reader, writer), b"GET", b"/", b"h", max_body=4096)
    finally:
        writer.close()


async def test_a_chunked_body_is_bounded_over_its_chunks(serve) -> None:
    chunks = b"".join(b"400\r\n" + b"a" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    url = await serve(lambda n: head(b"transfer-encoding: chunked") + b"\r\n" + chunks)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    try:
        with pytest.raises(BrokenAnswer, match="chunked body of more than 4096"):
            await exchange((reader, writer), b"GET", b"/", b"h", max_body=4096)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, (200, b"{}", True)),
        (b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\n{}", (200, b"{}", True)),
        (head(b"Content-Length: 2", b"content-length: 2") + b"\r\n{}", (200, b"{}", True)),
        (head(b"connection: keep-alive, close", b"content-length: 2") + b"\r\n{}", (200, b"{}", False)),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}", (200, b"{}", False)),
        (b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n{}", (200, b"{}", True)),
        (head(b"transfer-encoding: chunked") + b"\r\n2;x=1\r\n{}\r\n0\r\nx-t: 1\r\n\r\n", (200, b"{}", True)),
    ],
    ids=["interim 100", "no reason", "two equal lengths", "close token", "1.0 closes", "1.0 kept", "trailer"],
)
async def test_well_formed_answers_are_still_read(serve, answer: bytes, expected: tuple) -> None:
    url = await serve(lambda n: answer)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
    try:
        assert await exchange((reader, writer), b"GET", b"/", b"h") == expected
    finally:
        writer.close()


# The callers: a load worker and the Toxiproxy client


async def test_a_load_worker_records_an_oversized_header_as_info_and_goes_on(serve, tmp_path: Path) -> None:
    def answer(n: int) -> bytes:
        if n % 3 == 0:
            return head(b"x-big: " + b"a" * 200_000) + b"\r\n"
        body = json.dumps({"outcome": "committed", "stream_seq": n + 1}).encode()
        return head(b"content-length: %d" % len(body)) + b"\r\n" + body

    url = await serve(answer)
    plan = LoadPlan(rate=100, duration=0.3, keys=4, clients=1, timeout=2.0, seed=3)
    history = History(tmp_path / "history.jsonl")
    load = Load({"agent-1": url}, history, plan, "run")
    history.t0 = time.monotonic()
    await asyncio.wait_for(load.run(), 20)
    history.close()
    done = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    done = [op for op in done if op["type"] != "invoke"]
    assert len(done) == 30 == load.done  # one worker, one connection: it lived through every broken one
    broken = [op for op in done if op["type"] == "info"]
    assert len(broken) >= 10 and all(op["error"].startswith("BrokenAnswer: ") for op in broken)
    assert len([op for op in done if op["type"] == "ok"]) == 30 - len(broken) >= 10


async def test_the_toxiproxy_client_says_toxiproxy_did_not_answer(serve) -> None:
    url = await serve(lambda n: head(b"x-big: " + b"a" * 200_000) + b"\r\n")
    async with Toxiproxy(url) as tp:
        with pytest.raises(ToxiproxyError, match="did not answer GET /proxies: BrokenAnswer"):
            await tp.proxies()


@pytest.mark.parametrize(
    "body", [b"not json", b"[" * 100_000 + b"]" * 100_000], ids=["not JSON", "nested past the parser"]
)
async def test_the_toxiproxy_client_says_an_answer_is_not_json(serve, body: bytes) -> None:
    # A whole, well-framed answer whose body no JSON reader takes is Toxiproxy's error, like any other.
    url = await serve(lambda n: head(b"content-length: %d" % len(body)) + b"\r\n" + body)
    async with Toxiproxy(url) as tp:
        with pytest.raises(ToxiproxyError, match="GET /proxies -> 200: not JSON"):
            await tp.proxies()
