"""After the load: wait until the system has drained, then read what it holds (the stream, the store,
every container's log) into the run directory (docs/run-format.md), through harness.store's names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from surrealdb import AsyncSurreal

from harness import shape, store
from harness.observe.nats import jetstream_sample
from harness.topology.services import SURREAL_PASS, SURREAL_USER
from harness.topology.system import System
from harness.waiting import WaitTimeout, await_until

Progress = Callable[[str], None]


async def wait_drained(sut: System, within: float, say: Progress) -> None:
    """Until every agent's buffer is empty and the projector has acked everything; past `within`, say so
    and go on (what was left is in the files the checkers read)."""

    async def drained() -> bool:
        async with httpx.AsyncClient(timeout=1.0) as http:
            for a in sut.cfg.agent_names():
                h = (await http.get(f"{sut.http_url(a)}/healthz")).json()
                if h.get("buffer_depth", 0) > 0:
                    return False
            js = await jetstream_sample(http, sut) or {}
            return js.get("consumer_num_pending", 1) == 0 and js.get("consumer_num_ack_pending", 1) == 0

    try:
        await await_until(drained, "buffers empty and the projector caught up", timeout=within, interval=0.25)
    except WaitTimeout as e:
        say(f"not drained: {e}")


async def collect(sut: System, out: Path, say: Progress) -> dict[str, Any]:
    """The stream into stream.jsonl and the store into store.jsonl, each written as it is read (a soak's
    hundreds of thousands of records never sit in memory); returns how many of each.

    The store first: the projector writes only what the stream holds, so every row read then has its
    message in the stream read after it (or legally gone by a limit). Read the other way round, a
    system still projecting (undrained) wrote rows whose messages came after the stream was read, and
    they looked like a second writer's (`unsourced-write`): the 30-min soak with buffer-unbounded
    showed 10 such rows."""
    rows = await write_store(sut.surreal_url, out / store.STORE)
    messages = await write_stream(sut.nats_servers, out / store.STREAM)
    say(f"collected {messages} stream messages, {rows} store rows")
    return {"stream_msgs": messages, "store_rows": rows}


async def write_stream(servers: str | list[str], path: Path) -> int:
    """Every message of the stream, in order, a line each: seq, subject, msg_id, and the body's fields.
    `servers`: every NATS node (any that answers will do: the cluster serves the stream from its leader)."""
    nc = await nats.connect(servers, connect_timeout=2)
    n = 0
    try:
        js = nc.jetstream(timeout=5)
        info = await js.stream_info(shape.STREAM)
        with open(path, "w") as f:
            if info.state.messages == 0:
                return 0
            sub = await js.subscribe(shape.STREAM_SUBJECTS, stream=shape.STREAM, ordered_consumer=True)
            try:
                while True:
                    msg = await sub.next_msg(timeout=5)
                    try:
                        body = json.loads(msg.data)
                    except ValueError:
                        body = {"raw": msg.data.decode(errors="replace")}
                    seq = msg.metadata.sequence.stream
                    headers = msg.headers or {}
                    line = {"seq": seq, "subject": msg.subject, "msg_id": headers.get("Nats-Msg-Id"), **body}
                    f.write(json.dumps(line, separators=(",", ":")) + "\n")
                    n += 1
                    if seq >= info.state.last_seq:
                        return n
            finally:
                await sub.unsubscribe()
    finally:
        await nc.close()


STORE_PAGE = 10_000  # rows a query: pages follow the record id, so a row is never read twice


async def write_store(
    url: str, path: Path, ns: str = shape.SURREAL_NS, db_name: str = shape.SURREAL_DB
) -> int:
    """Every row the projector wrote, a line each: cid, key, value, stream_seq."""
    db = AsyncSurreal(url)
    await db.connect()
    n = 0
    fields = "cid, key, value, stream_seq, id"
    try:
        await db.signin({"username": SURREAL_USER, "password": SURREAL_PASS})
        await db.use(ns, db_name)
        with open(path, "w") as f:
            after = None
            while True:
                where = "" if after is None else "WHERE id > $after "
                rows = await db.query(
                    f"SELECT {fields} FROM {shape.STORE_TABLE} {where}ORDER BY id LIMIT {STORE_PAGE}",
                    {"after": after},
                )
                for row in rows or []:
                    after = row.pop("id")
                    f.write(json.dumps(dict(row), separators=(",", ":")) + "\n")
                    n += 1
                if not rows or len(rows) < STORE_PAGE:
                    return n
    finally:
        await db.close()


def save_logs(sut: System, out: Path) -> None:
    """Every container's log into the run directory's logs/: a cid can be followed through them."""
    folder = out / store.LOGS
    folder.mkdir(exist_ok=True)
    for name in list(sut.run.containers):
        try:
            (folder / f"{name}.log").write_bytes(sut.run.raw(name).logs())
        except Exception as e:  # a log we cannot read must not hide the run's result
            (folder / f"{name}.log").write_text(f"(log unavailable: {e})\n")
