"""The Locust engine records an answer that breaks the contract the way the asyncio engine does (one
ops.completion for both): that operation info with `contract`, the others as they came."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from harness import store
from harness.checkers.run import COMMITTED, INFO, Run
from harness.history import History
from harness.load import LoadPlan, LocustLoad
from harness.load.locust_engine import harness_shard
from tests.unit.test_answer_contract import Agent


async def test_locust_records_a_malformed_answer_as_info_and_the_others_as_ok(tmp_path: Path) -> None:
    agent = Agent()  # every fifth answer has stream_seq as a string
    server = await asyncio.start_server(agent.handle, "127.0.0.1", 0)
    urls = {"agent-1": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"}
    plan = LoadPlan(rate=100, duration=0.5, keys=4, clients=2, timeout=2.0, seed=1)
    history = History(harness_shard(tmp_path))
    load = LocustLoad(urls, history, plan, "run", tmp_path)
    async with server:
        await load.prepare()
        history.t0 = time.monotonic()
        await load.run()
    history.close()
    load.finish()
    ops = [json.loads(line) for line in (tmp_path / store.HISTORY).read_text().splitlines()]
    done = [op for op in ops if op["type"] != "invoke"]
    assert len(done) == 50 and agent.served == 50
    bad = [op for op in done if "contract" in op]
    assert len(bad) == 10 and all(op["type"] == "info" and "stream_seq" not in op for op in bad)
    assert {op["contract"].split(" (")[0] for op in bad} == {"stream_seq: a string"}
    assert load.counts == {"ok:committed": 40, "info:": 10}
    codes = list(Run(tmp_path).history.ops.code)
    assert codes.count(COMMITTED) == 40 and codes.count(INFO) == 10
