"""A poison message whose value carries SurrealDB's own words for a failed store, against a real
SurrealDB: its refusal echoes the value ("Found '...' for field `key`"), and the projector must still
take it for a refusal and dead-letter it, not retry it forever and stall the stream (issue 27)."""

from __future__ import annotations

from harness.waiting import await_until
from tests.integration.test_projector import (
    DEADLINE,
    _define,
    _settled,
    assert_rows,
    get_metrics,
    projector,
    publish_many,
    wait_rows,
)
from tests.integration.test_projector import bus as bus  # the fixture: a client of the test's own

# What SurrealDB says when its disk fails or a transaction loses a conflict, as a key would carry it.
ECHOES = {
    "eio": "There was a problem with a transaction: WAL error: IO error: Input/output error (os error 5)",
    "wrapped": "There was a problem with the key-value store: There was a problem with the datastore: gone",
    "conflict": "Transaction conflict: Transaction write conflict. This transaction can be retried",
    "disk-full": "The datastore is in read-and-deletion-only mode due to disk space limitations",
}


async def test_a_refusal_that_echoes_a_store_failure_is_dead_lettered(
    tmp_path, nats_server, surreal_server, bus
) -> None:
    await bus.create_stream()
    # An operator's schema refusing long keys: SurrealDB's answer quotes the key it refused.
    await _define(
        surreal_server, "DEFINE FIELD key ON sentiment TYPE string ASSERT string::len($value) < 40;"
    )
    proc, port = projector(tmp_path, nats_server, surreal_server)
    with proc:
        await proc.await_http_ready(port)
        published = await publish_many(bus, "before", 2)
        poison = {cid: await bus.publish(cid, key, 1) for cid, key in ECHOES.items()}
        published |= await publish_many(bus, "after", 2, start=2)
        last = max(poison.values()) + 2

        assert_rows(await wait_rows(surreal_server, 4), published)
        await await_until(
            lambda: _settled(bus, last), "the consumer past every message", timeout=DEADLINE * 2
        )
        dead = {r["cid"]: r for r in proc.lines() if r["msg"] == "dead-lettered"}
        assert {cid: r["seq"] for cid, r in dead.items()} == poison
        for r in dead.values():
            assert (r["cause"], r["attempts"]) == ("refused", 8), r
            assert "Found '" in r["reason"] and "for field `key`" in r["reason"], r
        assert (await get_metrics(port))["netsync_projector_dead_letters_total"] == len(ECHOES)
        info = await bus.consumer()
        assert (info.num_pending, info.num_ack_pending, info.num_redelivered) == (0, 0, 0)
