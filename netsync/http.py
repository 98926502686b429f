"""A minimal ASGI toolkit for the nodes' HTTP APIs (served by hypercorn's trio worker)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from netsync.logs import Log

MAX_BODY = 64 * 1024
BODY_TIMEOUT = 10.0  # for the whole body: a client that trickles it must not hold a handler forever

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyRefused(Exception):
    """A body not read: too large (413) or too slow (408); answered with the field `body`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client disconnected before its body ended: there is no one to answer."""


async def read_body(receive: Receive, scope: Scope | None = None, timeout: float = BODY_TIMEOUT) -> bytes:
    too_large = BodyRefused(413, f"body larger than {MAX_BODY} bytes")
    for name, value in (scope or {}).get("headers", []):
        if name.lower() == b"content-length" and value.strip().isdigit() and int(value) > MAX_BODY:
            raise too_large  # said up front: not a byte of it is read
    body = bytearray()
    with trio.move_on_after(timeout):
        while True:
            msg = await receive()
            if msg.get("type") == "http.disconnect":
                raise ClientGone()
            body += msg.get("body", b"")
            if len(body) > MAX_BODY:
                raise too_large
            if not msg.get("more_body"):
                return bytes(body)
    raise BodyRefused(408, f"body not received within {timeout:g} s ({len(body)} bytes came)")


def _announces_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        name = name.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def guarded(app: App, log: Log) -> App:
    """`app`, but a handler that fails is logged and answered with a JSON 500 (hypercorn's own is an
    empty one, and with its error log off nothing said why); and an answer sent before the request's
    body was read whole (a 413 refused unread, a 408, a route that takes no body) says
    `connection: close`. hypercorn closes such a connection after the answer without saying so, and a
    client that reused it in that moment saw "Server disconnected without sending a response" on its
    next request (test_agent_bodies, once in 617 runs of make test)."""

    async def run(scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        body_read = scope.get("type") != "http" or not _announces_body(scope)

        async def receiving() -> dict[str, Any]:
            nonlocal body_read
            msg = await receive()
            if msg.get("type") == "http.disconnect" or not msg.get("more_body"):
                body_read = True
            return msg

        async def tracked(msg: dict[str, Any]) -> None:
            nonlocal started
            if msg.get("type") == "http.response.start":
                started = True
                if not body_read:
                    msg = {**msg, "headers": [*msg.get("headers", []), (b"connection", b"close")]}
            await send(msg)

        try:
            await app(scope, receiving, tracked)
        except Exception as e:
            log.error("handler failed", method=scope.get("method"), path=scope.get("path"), error=repr(e))
            if scope.get("type") == "http" and not started:
                await respond_json(tracked, 500, {"error": f"internal error: {type(e).__name__}"})

    return run


async def respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, obj: Any) -> None:
    await respond(send, status, json.dumps(obj).encode(), "application/json")


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def serve_trio(app: App, port: int, log: Log, shutdown: Any = None) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"0.0.0.0:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    kwargs = {"shutdown_trigger": shutdown} if shutdown else {}
    await serve(guarded(app, log), config, **kwargs)
