"""The projector against a real nats-server (JetStream) and a real SurrealDB, both as
plain processes: what lands in SurrealDB is checked the way a user would, by querying
it. The tests create the stream as the orchestrator would; the projector never does."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import api
from surrealdb import RecordID

from harness.waiting import await_until
from tests.integration.netsync_procs import NatsServer, NetsyncProcess, SurrealServer, free_port
from tests.integration.netsync_procs import surreal_rows as rows

STREAM = "SENTIMENT"
SUBJECT = "root.solar.command.sentiment.set"
CONSUMER = "projector"
DEADLINE = 60.0


# -- servers and clients ---------------------------------------------------------


class Bus:
    """The test's own NATS client: creates the stream, publishes like the orchestrator."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=5)

    async def create_stream(self) -> None:
        await self.js.add_stream(
            api.StreamConfig(name=STREAM, subjects=["root.solar.command.>"], storage=api.StorageType.FILE)
        )

    async def publish(self, cid: str, key: str, value: int) -> int:
        body = {"cid": cid, "key": key, "value": value, "proposer": "agent-1", "decided_at": 1.7e9}
        return await self.publish_raw(json.dumps(body).encode(), cid)

    async def publish_raw(self, data: bytes, cid: str) -> int:
        ack = await self.js.publish(SUBJECT, data, headers={"Nats-Msg-Id": cid, "Correlation-Id": cid})
        return ack.seq

    async def consumer(self) -> Any:
        return await self.js.consumer_info(STREAM, CONSUMER)


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    nc = await nats.connect(
        nats_server.url, allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    try:
        yield Bus(nc)
    finally:
        await nc.close()


async def wait_rows(surreal: SurrealServer, n: int) -> dict[str, dict[str, Any]]:
    async def probe() -> dict[str, dict[str, Any]] | None:
        got = await rows(surreal)
        assert len(got) <= n, f"more rows than messages: {len(got)} > {n}"
        return got if len(got) == n else None

    return await await_until(probe, f"{n} rows in SurrealDB", timeout=DEADLINE, interval=0.1)


def assert_rows(got: dict[str, dict[str, Any]], published: dict[str, tuple[str, int, int]]) -> None:
    """Exactly the published messages, each once, with its key, value and stream seq."""
    assert set(got) == set(published)
    for cid, (key, value, seq) in published.items():
        row = got[cid]
        assert row["id"] == RecordID("sentiment", cid)
        assert (row["key"], row["value"], row["stream_seq"]) == (key, value, seq), row
        assert row["written_at"] is not None


def projector(
    tmp_path: Path, nats_server: NatsServer, surreal: SurrealServer, **extra: str
) -> tuple[NetsyncProcess, int]:
    port = free_port()
    env = {
        "NETSYNC_NAME": "projector",
        "NETSYNC_NATS_URL": nats_server.url,
        "NETSYNC_SURREAL_URL": surreal.ws_url,
        "NETSYNC_HTTP_PORT": str(port),
        **extra,
    }
    return NetsyncProcess("projector", env, workdir=tmp_path / "projector"), port


async def get_json(port: int, path: str = "/healthz") -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get(f"http://127.0.0.1:{port}{path}")
        r.raise_for_status()
        return r.json()


async def get_metrics(port: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for line in r.text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", line)
        if m and not m.group(2):
            out[m.group(1)] = float(m.group(3))
    return out


async def publish_many(bus: Bus, prefix: str, n: int, start: int = 0) -> dict[str, tuple[str, int, int]]:
    published = {}
    for i in range(start, start + n):
        cid = f"{prefix}-{i:04d}"
        key, value = f"key-{i % 7}", i * 3 - 50
        published[cid] = (key, value, await bus.publish(cid, key, value))
    return published


# -- the tests -------------------------------------------------------------------


async def test_every_message_lands_once(tmp_path, nats_server, surreal_server, bus) -> None:
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        # Started before the stream exists: it waits, and creates nothing itself.
        await await_until(
            lambda: asyncio.to_thread(
                lambda: any(r["msg"] == "waiting for the stream" for r in proc.lines())
            ),
            "the projector to wait for the stream",
            timeout=DEADLINE,
        )
        with pytest.raises(nats.js.errors.NotFoundError):
            await bus.js.stream_info(STREAM)

        await bus.create_stream()
        published = await publish_many(bus, "once", 50)
        # Republished cids are dropped by the stream's duplicate window: still one row each.
        for cid in list(published)[:5]:
            key, value, seq = published[cid]
            body = json.dumps(
                {"cid": cid, "key": key, "value": value, "proposer": "agent-2", "decided_at": 1}
            )
            assert await bus.publish_raw(body.encode(), cid) == seq

        assert_rows(await wait_rows(surreal_server, 50), published)
        info = await await_until(
            lambda: _settled(bus, 50), "the consumer to ack everything", timeout=DEADLINE
        )
        assert info.ack_floor.stream_seq == 50
        assert info.config.ack_wait == 30
        assert info.config.ack_policy == api.AckPolicy.EXPLICIT
        # Every write was logged with its cid.
        logged = [r for r in proc.lines() if r["msg"] == "projected"]
        assert {r["cid"] for r in logged} == set(published)
        assert all(r["node"] == "projector" and "t" in r and r["level"] == "info" for r in logged)


async def _settled(bus: Bus, last_seq: int) -> Any:
    info = await bus.consumer()
    if info.num_pending == 0 and info.num_ack_pending == 0 and info.ack_floor.stream_seq == last_seq:
        return info
    return None


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    tmp_path, nats_server, surreal_server, bus
) -> None:
    await bus.create_stream()
    # A short ack_wait: messages the killed projector held come back in 2 s, not 30.
    proc, port = projector(tmp_path, nats_server, surreal_server, NETSYNC_ACK_WAIT_MS="2000")
    total = 300
    with proc:
        await proc.await_http_ready(port)
        publisher = asyncio.create_task(publish_many(bus, "kill", 200))
        await await_until(
            lambda: _last_seq_at_least(port, 60), "the projector to be part way through", timeout=DEADLINE
        )
        proc.kill()
        published = await publisher
        # The rest of the stream arrives while the projector is down.
        published |= await publish_many(bus, "kill", total - 200, start=200)
        before = await rows(surreal_server)
        assert 60 <= len(before) <= 200

        proc.start()
        await proc.await_http_ready(port)
        got = await wait_rows(surreal_server, total)
        assert_rows(got, published)
        assert len({r["stream_seq"] for r in got.values()}) == total
        await await_until(lambda: _settled(bus, total), "the consumer to ack everything", timeout=DEADLINE)


async def _last_seq_at_least(port: int, seq: int) -> bool:
    return (await get_json(port))["last_seq"] >= seq


async def test_surreal_outage_holds_acks_and_resumes(tmp_path, nats_server, surreal_server, bus) -> None:
    await bus.create_stream()
    proc, port = projector(tmp_path, nats_server, surreal_server)
    total = 200
    with proc:
        await proc.await_http_ready(port)
        publisher = asyncio.create_task(publish_many(bus, "outage", 100))
        await await_until(lambda: _last_seq_at_least(port, 40), "the first writes", timeout=DEADLINE)
        surreal_server.stop()  # SIGKILL while messages are still being published
        published = await publisher
        published |= await publish_many(bus, "outage", total - 100, start=100)

        async def holding() -> Any:
            health = await get_json(port)
            info = await bus.consumer()
            metrics = await get_metrics(port)
            if (
                not health["connected_surreal"]
                and info.num_ack_pending > 0
                and metrics["netsync_projector_write_failures_total"] >= 2
            ):
                return info
            return None

        held = await await_until(holding, "the projector to hold messages, unacked", timeout=DEADLINE)
        floor = held.ack_floor.stream_seq
        assert floor < total
        # Retrying does not move the ack floor while SurrealDB is away.
        failures = (await get_metrics(port))["netsync_projector_write_failures_total"]
        await await_until(
            lambda: _metric_above(port, "netsync_projector_write_failures_total", failures),
            "another failed retry",
            timeout=DEADLINE,
        )
        again = await bus.consumer()
        assert again.ack_floor.stream_seq == floor
        assert again.num_ack_pending + again.num_pending == total - floor

        # Everything acked is in the store: look before the projector can write again.
        proc.pause()
        try:
            surreal_server.start()
            stored = await rows(surreal_server)
        finally:
            proc.resume()
        seqs = {r["stream_seq"] for r in stored.values()}
        assert set(range(1, floor + 1)) <= seqs, "an acked message is missing from SurrealDB"

        got = await wait_rows(surreal_server, total)
        assert_rows(got, published)
        await await_until(lambda: _settled(bus, total), "the consumer to ack everything", timeout=DEADLINE)
        assert (await get_json(port))["connected_surreal"] is True


async def _metric_above(port: int, name: str, value: float) -> bool:
    return (await get_metrics(port))[name] > value


async def test_malformed_message_is_termed_and_skipped(tmp_path, nats_server, surreal_server, bus) -> None:
    await bus.create_stream()
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        published = await publish_many(bus, "good", 2)
        bad = {
            await bus.publish_raw(b"this is not json", "bad-1"),
            await bus.publish_raw(json.dumps({"key": "k", "value": 1}).encode(), "bad-2"),
            await bus.publish_raw(b"[1, 2, 3]", "bad-3"),
            await bus.publish_raw(json.dumps({"cid": "bad-4", "key": "k", "value": "x"}).encode(), "bad-4"),
        }
        published |= await publish_many(bus, "good", 3, start=2)

        assert_rows(await wait_rows(surreal_server, 5), published)
        await await_until(
            lambda: _settled(bus, 9), "the consumer to ack or term everything", timeout=DEADLINE
        )
        dead = {r["seq"]: r for r in proc.lines() if r["msg"] == "dead-lettered"}
        assert set(dead) == bad
        assert all(r["level"] == "error" and r["cause"] == "malformed" and r["reason"] for r in dead.values())
        assert dead[max(bad)]["cid"] == "bad-4"  # named whenever the body has one
        metrics = await get_metrics(port)
        assert metrics["netsync_projected_total"] == 5
        assert metrics["netsync_projector_last_seq"] == 9
        assert metrics["netsync_projector_dead_letters_total"] == 4


async def test_healthz_metrics_and_clean_stop(tmp_path, nats_server, surreal_server, bus) -> None:
    await bus.create_stream()
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        # Connected to both before the first message.
        await await_until(
            lambda: _health_is(port, "connected_surreal", True), "a SurrealDB connection", timeout=DEADLINE
        )
        assert (await get_json(port))["connected_nats"] is True
        published = await publish_many(bus, "metric", 20)

        async def caught_up() -> dict[str, Any] | None:
            h = await get_json(port)
            return h if h["last_seq"] == 20 else None

        # Waiting on healthz, not by polling SurrealDB: a reader racing the projector's
        # first DEFINE can cause a (retried) transaction conflict, a write failure.
        health = await await_until(caught_up, "healthz to show the last seq", timeout=DEADLINE)
        assert_rows(await rows(surreal_server), published)
        assert health == {
            "name": "projector",
            "connected_nats": True,
            "connected_surreal": True,
            "last_seq": 20,
        }
        metrics = await get_metrics(port)
        assert metrics["netsync_projected_total"] == len(published)
        assert metrics["netsync_projector_write_failures_total"] == 0
        assert metrics["netsync_projector_last_seq"] == 20
        assert metrics["process_resident_memory_bytes"] > 0
        assert metrics["process_open_fds"] > 0
        async with httpx.AsyncClient(timeout=5) as c:
            assert (await c.get(f"http://127.0.0.1:{port}/nope")).status_code == 404

        assert proc.terminate() == 0
        assert proc.lines()[-1]["msg"] == "stopped"
        await await_until(lambda: _settled(bus, 20), "nothing left unacked", timeout=DEADLINE)


async def test_nats_outage_reconnects_and_resumes(tmp_path, nats_server, surreal_server, bus) -> None:
    await bus.create_stream()
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        published = await publish_many(bus, "before", 30)
        await wait_rows(surreal_server, 30)

        nats_server.stop()
        await await_until(
            lambda: _health_is(port, "connected_nats", False),
            "the projector to see NATS gone",
            timeout=DEADLINE,
        )
        nats_server.start()
        await await_until(
            lambda: _health_is(port, "connected_nats", True), "the projector to reconnect", timeout=DEADLINE
        )
        after: dict[str, tuple[str, int, int]] = {}

        async def publish_after() -> bool:
            after.update(await publish_many(bus, "after", 30 - len(after), start=len(after)))
            return True

        await await_until(publish_after, "publishing after the restart", timeout=DEADLINE)
        published |= after
        assert_rows(await wait_rows(surreal_server, 60), published)


async def _health_is(port: int, field: str, value: Any) -> bool:
    return (await get_json(port))[field] is value


async def test_long_surreal_outage_redelivers_nothing(tmp_path, nats_server, surreal_server, bus) -> None:
    await bus.create_stream()
    # ack_wait 2 s and an outage of more than twice that.
    proc, port = projector(tmp_path, nats_server, surreal_server, NETSYNC_ACK_WAIT_MS="2000")
    with proc:
        await proc.await_http_ready(port)
        published = await publish_many(bus, "long", 10)
        await await_until(lambda: _last_seq_at_least(port, 10), "the first writes", timeout=DEADLINE)
        surreal_server.stop()
        published |= await publish_many(bus, "long", 40, start=10)

        # Six failed attempts: 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s of backoff at least, > 2 x ack_wait.
        await await_until(
            lambda: _metric_above(port, "netsync_projector_write_failures_total", 5),
            "a long outage",
            timeout=DEADLINE,
        )
        info = await bus.consumer()
        assert info.num_ack_pending > 0
        assert info.ack_floor.stream_seq == 10
        held = set(range(11, info.delivered.stream_seq + 1))
        # A second puller on the durable (another projector instance, say) is not
        # handed what this one still holds: in-progress acks kept it from expiring.
        rival = await bus.js.pull_subscribe_bind(durable=CONSUMER, stream=STREAM)
        try:
            got = await rival.fetch(100, timeout=2)
        except nats.errors.TimeoutError:
            got = []
        assert not held & {m.metadata.sequence.stream for m in got}, "held messages were redelivered"
        for m in got:
            await m.nak()  # back to the projector
        await rival.unsubscribe()

        surreal_server.start()
        assert_rows(await wait_rows(surreal_server, 50), published)
        await await_until(lambda: _settled(bus, 50), "the consumer to ack everything", timeout=DEADLINE)
        # Each message written once: nothing came back for a second round.
        assert (await get_metrics(port))["netsync_projected_total"] == 50
        logged = [r["cid"] for r in proc.lines() if r["msg"] == "projected"]
        assert sorted(logged) == sorted(published)


async def test_sigterm_during_surreal_outage(tmp_path, nats_server, surreal_server, bus) -> None:
    await bus.create_stream()
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        published = await publish_many(bus, "term", 10)
        await await_until(lambda: _last_seq_at_least(port, 10), "the first writes", timeout=DEADLINE)
        surreal_server.stop()
        published |= await publish_many(bus, "term", 10, start=10)
        await await_until(
            lambda: _metric_above(port, "netsync_projector_write_failures_total", 1),
            "a failed retry",
            timeout=DEADLINE,
        )

        # SIGTERM while a write is being retried: a clean exit, the held messages handed back.
        assert proc.terminate(timeout=DEADLINE) == 0
        assert proc.lines()[-1]["msg"] == "stopped"
        handed = [r for r in proc.lines() if r["msg"] == "handed back unfinished messages"]
        assert handed and handed[-1]["seqs"][0] == 11
        assert (await bus.consumer()).ack_floor.stream_seq == 10

        surreal_server.start()
        proc.start()
        await proc.await_http_ready(port)
        assert_rows(await wait_rows(surreal_server, 20), published)
        await await_until(lambda: _settled(bus, 20), "the consumer to ack everything", timeout=DEADLINE)


async def test_a_recreated_stream_is_consumed_again(tmp_path, nats_server, surreal_server, bus) -> None:
    """What the harness's reset does between scenarios: the stream is deleted and created
    anew under the running projector, which must set its consumer up again."""
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        await bus.create_stream()
        first = await publish_many(bus, "before", 10)
        await wait_rows(surreal_server, 10)
        await bus.js.delete_stream(STREAM)
        await bus.create_stream()
        after = await publish_many(bus, "after", 10)
        assert {seq for _, _, seq in after.values()} == set(range(1, 11)), "a new stream counts from 1"
        got = await wait_rows(surreal_server, 20)
        assert_rows({cid: got[cid] for cid in after}, after)
        assert set(first) <= set(got)


async def _define(surreal: SurrealServer, statement: str) -> None:
    """A statement in the projector's namespace and database, as an operator would run it."""
    from surrealdb import AsyncSurreal

    db = AsyncSurreal(surreal.ws_url)
    try:
        await db.connect()
        await db.signin({"username": surreal.user, "password": surreal.password})
        await db.query(
            "DEFINE NAMESPACE IF NOT EXISTS solar; USE NS solar; DEFINE DATABASE IF NOT EXISTS netsync;"
        )
        await db.use("solar", "netsync")
        await db.query(statement)
    finally:
        await db.close()


async def test_a_poison_message_is_dead_lettered_and_cannot_stall_the_stream(
    tmp_path, nats_server, surreal_server, bus
) -> None:
    """Two kinds of message no retry can write: one the client cannot even encode (a lone surrogate
    in its key, a value past 64 bits), dead-lettered at once; one SurrealDB refuses every time (an
    operator's ASSERT), dead-lettered after its refusals. Everything behind them is projected."""
    await bus.create_stream()
    await _define(surreal_server, "DEFINE FIELD value ON sentiment TYPE int ASSERT $value < 1000;")
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        published = await publish_many(bus, "before", 3)
        poison = {
            "surrogate": await bus.publish_raw(
                b'{"cid": "surrogate", "key": "\\ud800", "value": 1}', "surrogate"
            ),
            "wide": await bus.publish_raw(
                b'{"cid": "wide", "key": "k", "value": 9223372036854775808}', "wide"
            ),
            "refused": await bus.publish("refused", "k", 5000),
        }
        published |= await publish_many(bus, "after", 3, start=3)

        assert_rows(await wait_rows(surreal_server, 6), published)
        await await_until(lambda: _settled(bus, 9), "the consumer past every message", timeout=DEADLINE)
        dead = {r["cid"]: r for r in proc.lines() if r["msg"] == "dead-lettered"}
        assert {cid: r["seq"] for cid, r in dead.items()} == poison
        assert (dead["surrogate"]["cause"], dead["wide"]["cause"]) == ("malformed", "malformed")
        assert "surrogate" in dead["surrogate"]["reason"] and "64-bit" in dead["wide"]["reason"]
        assert dead["refused"]["cause"] == "refused" and "5000" in dead["refused"]["reason"]
        assert dead["refused"]["attempts"] == 8
        metrics = await get_metrics(port)
        assert metrics["netsync_projector_dead_letters_total"] == 3
        assert metrics["netsync_projected_total"] == 6
        # Nothing of them is redelivered later: the consumer has no message outstanding.
        info = await bus.consumer()
        assert (info.num_pending, info.num_ack_pending, info.num_redelivered) == (0, 0, 0)


async def test_a_surreal_outage_is_never_taken_for_a_poison_message(
    tmp_path, nats_server, surreal_server, bus
) -> None:
    """Refusals count only while SurrealDB answers: a write failing for a whole outage, far more
    times than the refusals allowed, is still written once SurrealDB is back."""
    await bus.create_stream()
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        await await_until(lambda: _health_is(port, "connected_surreal", True), "surreal up", timeout=DEADLINE)
        surreal_server.stop()
        published = await publish_many(bus, "outage", 2)
        await await_until(
            lambda: _metric_above(port, "netsync_projector_write_failures_total", 9),
            "ten failed writes during the outage",
            timeout=DEADLINE,
        )
        surreal_server.start()
        assert_rows(await wait_rows(surreal_server, 2), published)
        assert not [r for r in proc.lines() if r["msg"] == "dead-lettered"]
