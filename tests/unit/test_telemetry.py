"""The orchestrator's telemetry scout keeps summarising whatever a peer publishes on the topic."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from netsync.telemetry import Scout, decode


@dataclass
class _Message:
    data: bytes


class _Topic:
    """Stands in for py-libp2p's pubsub: hands the scout these messages, then blocks."""

    def __init__(self, payloads: list[bytes]) -> None:
        self.payloads = list(payloads)

    async def subscribe(self, topic: str) -> _Topic:
        return self

    async def get(self) -> _Message:
        if not self.payloads:
            await trio.sleep_forever()
        return _Message(self.payloads.pop(0))


def test_samples_that_are_not_json_objects_are_skipped_not_fatal() -> None:
    scout = Scout(interval=60)
    payloads = [
        b"[1, 2]",
        b"5",
        b'"agent-1"',
        b"null",
        b"{not json",
        b"\xff\xfe",
        b'{"agent": "agent-1", "buffer_depth": 3}',
    ]

    async def main() -> None:
        with trio.move_on_after(0.5):
            await scout.collect(_Topic(payloads))  # type: ignore[arg-type]

    trio.run(main)
    assert scout.window.messages == 1
    assert scout.window.agents["agent-1"]["buffer_depth_max"] == 3


def test_decode_keeps_objects_only() -> None:
    assert decode(b'{"agent": "agent-2"}') == {"agent": "agent-2"}
    assert [decode(b) for b in (b"[]", b"1", b"true", b"", b"\x80")] == [None] * 5
