"""What /healthz says of NATS, on a real nats-server (docs/contract.md, "Health"): the orchestrator's
`nats` and the projector's `connected_nats` are true while connected with the stream in place, not
merely while the client is connected (issue 27). Processes on 127.0.0.1, no Docker."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import nats
from nats.js import api

from harness.waiting import await_until, wait_until
from tests.integration.netsync_procs import NatsServer, NetsyncProcess, free_port

STREAM = "SENTIMENT"
DEADLINE = 60.0


class NatsWithoutJetStream(NatsServer):
    """A nats-server that takes connections but has no JetStream: no stream can be in place."""

    def command(self) -> list[str]:
        cmd = super().command()
        i = cmd.index("-js")
        return cmd[:i] + cmd[i + 3 :]  # without -js -sd DIR


def healthz(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return json.loads(r.read())


def connections(server: NatsServer) -> list[str]:
    """The names of the clients connected to `server`, from its monitoring endpoint."""
    with urllib.request.urlopen(f"{server.monitor_url}/connz", timeout=2) as r:
        return [c.get("name", "") for c in json.loads(r.read())["connections"]]


def orchestrator(tmp_path: Path, server: NatsServer) -> tuple[NetsyncProcess, int]:
    port = free_port()
    env = {
        "NETSYNC_NAME": "orchestrator",
        "NETSYNC_IDENTITY_SEED": "orchestrator",
        "NETSYNC_LISTEN": f"/ip4/127.0.0.1/tcp/{free_port()}",
        "NETSYNC_NATS_URL": server.url,
        "NETSYNC_HTTP_PORT": str(port),
    }
    return NetsyncProcess("orchestrator", env, workdir=tmp_path / "orchestrator"), port


def projector(tmp_path: Path, server: NatsServer) -> tuple[NetsyncProcess, int]:
    port = free_port()
    env = {
        "NETSYNC_NAME": "projector",
        "NETSYNC_NATS_URL": server.url,
        # Nothing listens there: the projector's NATS side does not wait for SurrealDB.
        "NETSYNC_SURREAL_URL": f"ws://127.0.0.1:{free_port()}/rpc",
        "NETSYNC_HTTP_PORT": str(port),
    }
    return NetsyncProcess("projector", env, workdir=tmp_path / "projector"), port


def field_is(port: int, field: str, value: bool) -> bool:
    return healthz(port)[field] is value


async def afield_is(port: int, field: str, value: bool) -> bool:
    return await asyncio.to_thread(field_is, port, field, value)


def stays(port: int, field: str, value: bool, seconds: float = 3.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert healthz(port)[field] is value, f"{field} turned {not value}"
        time.sleep(0.2)


def test_an_orchestrator_connected_to_nats_without_jetstream_is_not_ready(tmp_path) -> None:
    with NatsWithoutJetStream(tmp_path / "nats") as server:
        proc, port = orchestrator(tmp_path, server)
        with proc:
            proc.wait_http_ready(port)
            wait_until(lambda: connections(server), "the orchestrator's connection", timeout=DEADLINE)
            stays(port, "nats", False)


def test_the_orchestrator_says_nats_again_after_an_outage_without_a_publish(tmp_path, nats_server) -> None:
    proc, port = orchestrator(tmp_path, nats_server)
    with proc:
        proc.wait_http_ready(port)
        wait_until(lambda: field_is(port, "nats", True), "the stream in place", timeout=DEADLINE)
        nats_server.stop()
        wait_until(lambda: field_is(port, "nats", False), "the outage seen", timeout=DEADLINE)
        nats_server.start()  # the same store: the stream is back with it
        wait_until(lambda: field_is(port, "nats", True), "the stream confirmed", timeout=DEADLINE)


async def test_the_projector_says_nats_only_while_its_stream_is_in_place(tmp_path, nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream(timeout=5)
    proc, port = projector(tmp_path, nats_server)
    try:
        with proc:
            await proc.await_http_ready(port)
            await await_until(
                lambda: asyncio.to_thread(lambda: "projector" in connections(nats_server)),
                "its connection",
                timeout=DEADLINE,
            )
            await asyncio.to_thread(stays, port, "connected_nats", False, 2)  # connected, no stream yet
            config = api.StreamConfig(
                name=STREAM, subjects=["root.solar.command.>"], storage=api.StorageType.FILE
            )
            await js.add_stream(config)
            await await_until(
                lambda: afield_is(port, "connected_nats", True), "the consumer", timeout=DEADLINE
            )
            await js.delete_stream(STREAM)  # what the harness's reset does first
            await await_until(
                lambda: afield_is(port, "connected_nats", False), "the stream gone", timeout=DEADLINE
            )
            await js.add_stream(config)
            await await_until(
                lambda: afield_is(port, "connected_nats", True), "the consumer again", timeout=DEADLINE
            )
    finally:
        await nc.close()
