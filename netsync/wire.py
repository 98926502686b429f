"""Framing on libp2p streams: a 4-byte big-endian length, then UTF-8 JSON (docs/contract.md)."""

from __future__ import annotations

import json
from typing import Any, Protocol

MAX_FRAME = 64 * 1024


class FrameError(Exception):
    pass


class ByteStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


def encode(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return len(body).to_bytes(4, "big") + body


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(n - len(buf))
        if not chunk:
            raise FrameError(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def read_frame(stream: ByteStream) -> dict[str, Any]:
    size = int.from_bytes(await read_exactly(stream, 4), "big")
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    try:
        obj = json.loads(await read_exactly(stream, size))
    except ValueError as e:
        raise FrameError(f"frame is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise FrameError("frame is not a JSON object")
    return obj


async def write_frame(stream: ByteStream, obj: dict[str, Any]) -> None:
    await stream.write(encode(obj))
