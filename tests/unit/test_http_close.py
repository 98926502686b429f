"""netsync.http: an answer sent before the request's body was read whole says `connection: close`.

hypercorn closes such a connection right after the answer, without a word; httpx put it back in its
pool and reused it in that moment: "Server disconnected without sending a response" on the next body
(test_agent_bodies, once in 617 runs of make test; 3 in 300 rounds of a 413 then a 400 before the fix).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from harness.waiting import wait_until
from netsync.http import BodyRefused, guarded, lifespan, read_body, respond_json, serve_trio
from netsync.logs import Log

BIG = b'{"key": "k", "value": 1, "cid": "' + b"x" * 70_000 + b'"}'  # over 64 KiB: a 413, unread


async def intents(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The shape of the agent's POST /intents: the body is read, or refused (413/408), then answered."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["method"] != "POST":
        await respond_json(send, 404, {"error": "no route"})
        return
    try:
        await read_body(receive, scope)
    except BodyRefused as e:
        await respond_json(send, e.status, {"error": str(e), "field": "body"})
        return
    await respond_json(send, 400, {"error": "key must be valid Unicode", "field": "key"})


@pytest.fixture
def server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()

    async def stopped() -> None:
        while not stop.is_set():
            await trio.sleep(0.02)

    thread = threading.Thread(target=trio.run, args=(serve_trio, intents, port, Log("t"), stopped))
    thread.start()
    try:
        wait_until(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, "hypercorn"
        )
        yield port
    finally:
        stop.set()
        thread.join(timeout=10)


def answer(s: socket.socket) -> tuple[int, dict[bytes, bytes], bytes]:
    """One answer off a raw socket: status, headers (lower-case names), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"the server closed the connection before answering (read {data!r})"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(b":", 1) for h in lines[1:])}
    while len(body) < int(headers[b"content-length"]):
        body += s.recv(65536)
    return int(lines[0].split()[1]), headers, body


def post(body: bytes) -> bytes:
    return b"POST /intents HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def test_a_body_refused_unread_is_answered_with_connection_close_and_the_connection_ends(server) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(post(BIG))
        status, headers, _ = answer(s)
        assert (status, headers.get(b"connection")) == (413, b"close")
        s.settimeout(10)
        assert s.recv(65536) == b""  # closed by the server, as it said


def test_a_body_read_whole_keeps_the_connection_for_the_next_request(server) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        for _ in range(3):
            s.sendall(post(b'{"key": "\\udfff", "value": 133974877516918669312}'))
            status, headers, _ = answer(s)
            assert (status, headers.get(b"connection")) == (400, None)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")  # no body: nothing left unread
        status, headers, _ = answer(s)
        assert (status, headers.get(b"connection")) == (404, None)


def run_guarded(app: Any, headers: list[tuple[bytes, bytes]], parts: list[bytes]) -> list[dict]:
    """`app` behind `guarded`, its body handed out in `parts`; what it sent."""
    sent: list[dict] = []
    queue = list(parts)

    async def receive() -> dict:
        part = queue.pop(0) if queue else b""
        return {"type": "http.request", "body": part, "more_body": bool(queue)}

    async def send(msg: dict) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": "POST", "path": "/intents", "headers": headers}
    trio.run(guarded(app, Log("t")), scope, receive, send)
    return sent


def closes(sent: list[dict]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def test_every_answer_given_with_a_body_left_unread_closes_and_no_other() -> None:
    async def fails_before_reading(scope, receive, send) -> None:
        raise RuntimeError("boom")

    async def answers_without_reading(scope, receive, send) -> None:
        await respond_json(send, 404, {"error": "no route"})

    async def reads_half(scope, receive, send) -> None:
        await receive()
        await respond_json(send, 400, {"error": "x", "field": "key"})

    chunked = [(b"transfer-encoding", b"chunked")]
    sized = [(b"content-length", b"8")]
    assert closes(run_guarded(fails_before_reading, sized, [b"12345678"]))  # the 500
    assert closes(run_guarded(answers_without_reading, chunked, [b"1234", b"5678"]))
    assert closes(run_guarded(reads_half, chunked, [b"1234", b"5678"]))
    assert not closes(run_guarded(reads_half, sized, [b"12345678"]))  # read to its end
    assert not closes(run_guarded(answers_without_reading, [(b"content-length", b"0")], []))
    assert not closes(run_guarded(answers_without_reading, [], []))
