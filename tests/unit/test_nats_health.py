"""What /healthz says of NATS (docs/contract.md, "Health"): the orchestrator's `nats` and the
projector's `connected_nats` are true while connected with the stream in place (the projector: its
consumer on it), not merely connected; kept as a flag, so /healthz costs NATS nothing (issue 27).
The NATS client is a stand-in here; tests/integration/test_nats_health.py runs them on nats-server."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlparse

import nats.js.errors
import pytest
import trio

from netsync import projector_nats
from netsync.logs import Log
from netsync.orchestrator import Committer, Orchestrator, Unavailable
from netsync.projector import Projector
from netsync.settings import OrchestratorSettings, ProjectorSettings, StreamSettings


class FakeNC:
    """nats-py's client as these roles use it: a connection flag and a JetStream context."""

    def __init__(self, js: FakeJS) -> None:
        self.is_connected = True
        self.js = js
        self.connected_url = urlparse("nats://127.0.0.1:4222")

    def jetstream(self, timeout: float = 5) -> FakeJS:
        return self.js


class FakeJS:
    """JetStream with one stream that may be there or not; counts the API calls made."""

    def __init__(self, stream: bool = True) -> None:
        self.stream = stream
        self.calls: list[str] = []

    def _need_stream(self, call: str) -> None:
        self.calls.append(call)
        if not self.stream:
            raise nats.js.errors.NotFoundError()

    async def stream_info(self, name: str) -> Any:
        self._need_stream("stream_info")
        return _Info()

    async def add_stream(self, config: Any) -> Any:
        self.calls.append("add_stream")
        self.stream = True
        return _Info()

    async def publish(self, subject: str, payload: bytes, **kw: Any) -> Any:
        self.calls.append("publish")
        if not self.stream:
            raise nats.js.errors.NoStreamResponseError()
        return _Ack()

    async def consumer_info(self, stream: str, consumer: str) -> Any:
        self._need_stream("consumer_info")
        return _Info()

    async def pull_subscribe_bind(self, durable: str, stream: str) -> Any:
        self._need_stream("pull_subscribe_bind")
        return object()


class _Info:
    class config:  # noqa: N801 - the attribute names of nats-py's StreamInfo/ConsumerInfo
        duplicate_window = 120.0
        ack_wait = 30.0


class _Ack:
    seq, duplicate = 1, False


# -- the orchestrator ---------------------------------------------------------------------------


def committer(js: FakeJS) -> Committer:
    c = Committer("nats://x", StreamSettings(), 0.3, Log("orchestrator"))
    c.nc = FakeNC(js)  # type: ignore[assignment]
    return c


def decision(cid: str = "c1") -> dict[str, Any]:
    return {"type": "decision", "cid": cid, "key": "k", "value": 1, "attempt": 1}


async def test_the_orchestrator_is_ready_only_once_the_stream_is_in_place() -> None:
    js = FakeJS(stream=False)
    c = committer(js)
    assert c.nc.is_connected and not c.ready  # connected is not enough
    await c.ensure_stream()  # made when missing
    assert c.ready and js.calls == ["stream_info", "add_stream"]
    c.nc.is_connected = False  # a dropped connection, before any callback says so
    assert not c.ready


async def test_a_drop_clears_it_and_a_reconnect_confirms_the_stream_once() -> None:
    js = FakeJS()
    c = committer(js)
    await c.ensure_stream()
    await c._disconnected()
    assert not c.ready
    js.calls.clear()
    await c._reconnected()
    await c._confirming
    assert c.ready and js.calls == ["stream_info"]  # without waiting for a publish to show it


async def test_a_publish_that_finds_the_stream_gone_clears_it_and_the_next_makes_it_again() -> None:
    js = FakeJS()
    c = committer(js)
    await c.ensure_stream()
    js.stream = False  # deleted under the orchestrator
    with pytest.raises(Unavailable, match="NoStreamResponseError"):
        await c.publish(decision())
    assert not c.ready
    assert await c.publish(decision("c2")) == (1, False)
    assert c.ready and js.calls[-3:] == ["stream_info", "add_stream", "publish"]


async def test_a_publish_that_lands_says_the_stream_is_in_place() -> None:
    js = FakeJS()
    c = committer(js)
    c.stream_ready = True
    await c.publish(decision())
    assert c.ready and js.calls == ["publish"]


def healthz(orchestrator: Orchestrator) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    trio.run(orchestrator.app, {"type": "http", "path": "/healthz", "method": "GET"}, None, send)
    assert sent[0]["status"] == 200
    return json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_the_orchestrators_healthz_says_nats_only_with_the_stream(monkeypatch) -> None:
    monkeypatch.setenv("NETSYNC_NATS_URL", "nats://127.0.0.1:1")  # never reached
    orchestrator = Orchestrator(OrchestratorSettings.from_env())
    try:
        js = FakeJS()
        orchestrator.committer.nc = FakeNC(js)  # type: ignore[assignment]
        assert healthz(orchestrator)["nats"] is False  # connected, the stream not yet seen
        orchestrator.committer.stream_ready = True
        assert healthz(orchestrator)["nats"] is True
        assert js.calls == []  # /healthz asked NATS nothing
    finally:
        orchestrator.bridge.close()


# -- the projector ---------------------------------------------------------------------------------


async def projector(monkeypatch, js: FakeJS) -> tuple[Projector, dict[str, Any]]:
    """A projector connected through a stand-in nats.connect; (projector, its connect callbacks)."""
    callbacks: dict[str, Any] = {}

    async def connect(servers: Any, **kw: Any) -> FakeNC:
        callbacks.update(kw)
        return FakeNC(js)

    monkeypatch.setattr(projector_nats.nats, "connect", connect)
    settings = ProjectorSettings(
        "projector", ("nats://x",), "SENTIMENT", "projector", "ws://x", "u", "p", "n", "d", 0
    )
    p = Projector(settings, Log("projector"))
    await p._connect_nats()
    return p, callbacks


async def test_the_projector_says_nats_once_its_consumer_is_on_the_stream(monkeypatch) -> None:
    js = FakeJS(stream=False)
    p, _ = await projector(monkeypatch, js)
    assert p.nc.is_connected and p.health()["connected_nats"] is False
    waiting = asyncio.create_task(p._subscribe())  # waits for the orchestrator's stream
    await asyncio.sleep(0.05)
    assert p.health()["connected_nats"] is False
    js.stream = True
    assert await asyncio.wait_for(waiting, 5) is not None
    calls = len(js.calls)
    assert p.health()["connected_nats"] is True
    assert len(js.calls) == calls  # /healthz asked NATS nothing
    p.stop()


async def test_the_projector_clears_it_on_a_drop_and_confirms_on_a_reconnect(monkeypatch) -> None:
    js = FakeJS()
    p, callbacks = await projector(monkeypatch, js)
    await p._subscribe()
    await callbacks["disconnected_cb"]()
    assert p.health()["connected_nats"] is False
    await callbacks["reconnected_cb"]()
    await p._confirming
    assert p.health()["connected_nats"] is True

    # Back, but the stream is gone: not in place, until the fetch loop sets the consumer up again.
    await callbacks["disconnected_cb"]()
    js.stream = False
    await callbacks["reconnected_cb"]()
    await p._confirming
    assert p.health()["connected_nats"] is False
    p.stop()
