"""The ground everything stands on, with real parts only: NATS with JetStream,
SurrealDB and Toxiproxy containers on one labelled network, a proxy in front of NATS,
a fault that makes the proxied path time out while the direct one works, SurrealDB
keeping a row across a hard restart, and nothing left behind afterwards."""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import pytest
from surrealdb import AsyncSurreal

from harness import engine
from harness.topology.docker import DockerRun
from harness.topology.services import (
    NATS,
    NATS_CLIENT_PORT,
    SURREAL_PASS,
    SURREAL_PORT,
    SURREAL_USER,
    SURREALDB,
    TOXIPROXY,
    TOXIPROXY_API_PORT,
)
from harness.toxiproxy import Toxic, Toxiproxy
from harness.waiting import await_until

pytestmark = pytest.mark.docker

PROXY_PORT = 20000
SUBJECT = "root.solar.command.sentiment.set"


@pytest.fixture
def stack(images):
    with DockerRun(images) as run:
        net = run.network("data")
        NATS.define(run, net)
        SURREALDB.define(run, net)
        TOXIPROXY.define(run, net, extra_ports=(PROXY_PORT,))
        run.start()
        for svc in (NATS, SURREALDB, TOXIPROXY):
            svc.wait_ready(run)
        yield run
    assert not engine.list_runs(run.run_id), "the run's containers or networks were left behind"


async def publish_ok(js, cid: str, timeout: float) -> int:
    ack = await js.publish(SUBJECT, b'{"k":1}', timeout=timeout, headers={"Nats-Msg-Id": cid})
    return ack.seq


async def test_jetstream_through_toxiproxy_and_a_blackhole(stack: DockerRun) -> None:
    direct_url = f"nats://127.0.0.1:{stack.host_port('nats', NATS_CLIENT_PORT)}"
    proxied_url = f"nats://127.0.0.1:{stack.host_port('toxiproxy', PROXY_PORT)}"
    api = f"http://127.0.0.1:{stack.host_port('toxiproxy', TOXIPROXY_API_PORT)}"

    async with Toxiproxy(api) as tp:
        await tp.create("test>nats", f"0.0.0.0:{PROXY_PORT}", f"nats:{NATS_CLIENT_PORT}")
        direct = await nats.connect(direct_url)
        proxied = await nats.connect(proxied_url, allow_reconnect=True, max_reconnect_attempts=-1)
        try:
            jsd, jsp = direct.jetstream(), proxied.jetstream()
            await jsd.add_stream(name="COMMANDS", subjects=[SUBJECT])

            seq1 = await publish_ok(jsp, "cid-1", timeout=2)
            assert seq1 == 1

            # Blackhole: bytes from NATS to the client vanish; the connection stays open.
            await tp.add_toxic("test>nats", Toxic("blackhole", "timeout", "downstream", 1.0, {"timeout": 0}))
            with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError)):
                await publish_ok(jsp, "cid-2", timeout=1)
            seq3 = await publish_ok(jsd, "cid-3", timeout=2)
            assert seq3 > seq1, "the direct path must work while the proxied one is blackholed"

            await tp.remove_toxic("test>nats", "blackhole")
            seq4 = await await_until(
                lambda: publish_ok(jsp, "cid-4", timeout=1), "a proxied publish after the heal", 15
            )
            assert seq4 > seq3

            # The publish sent into the blackhole reached the stream (only its ack was lost):
            # exactly the case the pending-commit replay and dedup must handle.
            info = await jsd.stream_info("COMMANDS")
            assert info.state.messages == 4
        finally:
            await proxied.close()
            await direct.close()


async def test_surrealdb_keeps_a_row_across_a_hard_restart(stack: DockerRun) -> None:
    async def connect() -> AsyncSurreal:
        url = f"ws://127.0.0.1:{stack.host_port('surrealdb', SURREAL_PORT)}/rpc"
        db = AsyncSurreal(url)
        await db.connect()
        await db.signin({"username": SURREAL_USER, "password": SURREAL_PASS})
        return db

    db = await connect()
    await db.query("DEFINE NAMESPACE IF NOT EXISTS solar; USE NS solar; DEFINE DATABASE IF NOT EXISTS chaos;")
    await db.use("solar", "chaos")
    await db.query("CREATE type::record('sentiment', 'cid-1') SET key = 'k1', value = 5, stream_seq = 1")
    await db.close()

    ctr = stack.raw("surrealdb")
    ctr.kill()  # SIGKILL: no clean shutdown to flush anything
    ctr.start()
    SURREALDB.wait_ready(stack)

    db = await connect()
    await db.use("solar", "chaos")
    rows = await db.query("SELECT key, value, stream_seq FROM sentiment")
    await db.close()
    assert rows == [{"key": "k1", "value": 5, "stream_seq": 1}]
