"""Framing on libp2p streams: a 4-byte big-endian length, then UTF-8 JSON (docs/contract.md)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from netsync.untrusted import loads

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


def decode(body: bytes) -> dict[str, Any]:
    try:
        obj = loads(body)
    except ValueError as e:
        raise FrameError(f"frame is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise FrameError("frame is not a JSON object")
    return obj


class FrameReader:
    """Reads the frames of one long-lived stream. It asks the stream for whatever is
    buffered (up to READ_CHUNK) and splits it, so a burst of frames costs one read,
    not two per frame."""

    READ_CHUNK = 256 * 1024

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def next(self) -> dict[str, Any] | None:
        """The next frame, or None at a clean end of the stream between frames."""
        while True:
            if len(self.buf) >= 4:
                size = int.from_bytes(self.buf[:4], "big")
                if size > MAX_FRAME:
                    raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
                if len(self.buf) >= 4 + size:
                    body = bytes(self.buf[4 : 4 + size])
                    del self.buf[: 4 + size]
                    return decode(body)
            try:
                chunk = await self.stream.read(self.READ_CHUNK)
            except EOFError:
                chunk = b""
            if not chunk:
                if self.buf:
                    raise FrameError(f"stream ended inside a frame ({len(self.buf)} bytes buffered)")
                return None
            self.buf += chunk
