"""Collecting the store from a SurrealDB the projector never wrote to: SurrealDB 3 answers NotFound for
the table (and the database and namespace), and the run must still get its verdict (everything
accepted is then `unprojected`), where `solar-chaos run` used to stop with "unexpected NotFoundError:
The table 'sentiment' does not exist" and write none (found by make mutation: a mutant that broke the
projector was scored killed for a crash of the harness)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness import shape
from harness.collect import write_store
from harness.topology.services import surreal_session
from tests.integration.netsync_procs import SurrealServer


def test_a_store_nothing_was_projected_to_collects_as_empty(
    tmp_path: Path, surreal_server: SurrealServer
) -> None:
    out = tmp_path / "store.jsonl"
    assert asyncio.run(write_store(surreal_server.ws_url, out)) == 0
    assert out.read_bytes() == b""


def test_an_empty_table_in_a_used_database_collects_as_empty(
    tmp_path: Path, surreal_server: SurrealServer
) -> None:
    async def made_then_collected() -> int:
        async with surreal_session(surreal_server.ws_url) as db:
            await db.query(f"DEFINE TABLE {shape.STORE_TABLE} SCHEMALESS")
            await db.query("CREATE other:1 SET x = 1")  # another table's row is not the store's
        return await write_store(surreal_server.ws_url, tmp_path / "store.jsonl")

    assert asyncio.run(made_then_collected()) == 0
