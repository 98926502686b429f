"""A minimal ASGI toolkit for the nodes' HTTP APIs (served by hypercorn's trio worker)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BODY = 64 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if len(body) > MAX_BODY:
            raise BodyTooLarge(f"body larger than {MAX_BODY} bytes")
        if not msg.get("more_body"):
            return bytes(body)


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


async def serve_trio(app: Callable[..., Awaitable[None]], port: int, shutdown: Any = None) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"0.0.0.0:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    kwargs = {"shutdown_trigger": shutdown} if shutdown else {}
    await serve(app, config, **kwargs)
