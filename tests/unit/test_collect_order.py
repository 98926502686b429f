"""collect() reads the store before the stream: a system still projecting when it is collected must not
show rows whose messages arrived after the stream was read (they would look like a second writer's)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from harness import collect


def test_the_store_is_read_before_the_stream(tmp_path: Path, monkeypatch) -> None:
    order: list[str] = []

    async def stream(url: str, path: Path) -> int:
        order.append("stream")
        return 0

    async def rows(url: str, path: Path) -> int:
        order.append("store")
        return 0

    monkeypatch.setattr(collect, "write_stream", stream)
    monkeypatch.setattr(collect, "write_store", rows)
    sut = SimpleNamespace(
        nats_servers=["nats://x"], surreal_url="ws://x", cfg=SimpleNamespace(analytics=False)
    )
    asyncio.run(collect.collect(sut, tmp_path, lambda _: None))  # type: ignore[arg-type]
    assert order == ["store", "stream"]
