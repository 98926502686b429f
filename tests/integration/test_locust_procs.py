"""The Locust engine as processes, without containers: a master and two workers send the seeded plan
to a stand-in agent on 127.0.0.1 while the harness records nemesis lines in its own shard; the merge
puts all of it into one history.jsonl in time order, each intent of the plan sent once, by one worker."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from harness import store
from harness.history import History
from harness.load import LoadPlan, LocustLoad, intents
from harness.load.locust_engine import harness_shard
from tests.unit.test_load import Agent


async def test_two_locust_workers_send_the_plan_once_into_one_history(tmp_path: Path) -> None:
    agent = Agent()
    server = await asyncio.start_server(agent.handle, "127.0.0.1", 0)
    urls = {"agent-1": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"}
    plan = LoadPlan(rate=100, duration=2, keys=8, clients=4, timeout=2.0, seed=5)
    history = History(harness_shard(tmp_path))
    load = LocustLoad(urls, history, plan, "run", tmp_path, workers=2)
    async with server:
        await load.prepare()
        history.t0 = time.monotonic()
        history.record(
            {"process": "nemesis", "type": "info", "f": "start", "fault": "pause", "fault_id": "f1"}
        )
        run = asyncio.create_task(load.run())
        await asyncio.sleep(1.0)  # a fault in the middle of the load, as a scenario's would be
        history.record(
            {"process": "nemesis", "type": "info", "f": "stop", "fault": "pause", "fault_id": "f1"}
        )
        await run
    answered = load.answered("agent-1")  # what `repeat` would post again, read from the shards
    history.close()
    load.finish()

    ops = [json.loads(line) for line in (tmp_path / store.HISTORY).read_text().splitlines()]
    assert [op["t"] for op in ops] == sorted(op["t"] for op in ops)
    assert [op["f"] for op in ops if op["process"] == "nemesis"] == ["start", "stop"]
    assert 0.9 < next(op["t"] for op in ops if op.get("f") == "stop") < 1.5  # one clock for all shards
    sent = [op for op in ops if op["type"] == "invoke"]
    planned = {(i.cid, i.agent, i.key, i.value) for i in intents(plan, list(urls), "run")}
    assert {(op["cid"], op["agent"], op["key"], op["value"]) for op in sent} == planned
    assert len(sent) == 200 and Counter(op["cid"] for op in ops if op["type"] == "ok") == Counter(
        op["cid"] for op in sent if op["value"] % 2 == 0
    )
    assert sorted(a.cid for a in answered) == sorted(op["cid"] for op in sent)
    assert [a.cid for a in answered] == [op["cid"] for op in ops if op["type"] in ("ok", "fail")]
    by_worker = Counter(op["process"].split(".")[0] for op in sent)
    assert by_worker == {"w0": 100, "w1": 100}
    assert all(int(op["cid"].rsplit("-", 1)[1]) % 2 == int(op["process"][1]) for op in sent)
    odd = sum(1 for i in intents(plan, list(urls), "run") if i.value % 2)  # the stand-in aborts those
    assert load.counts == {"ok:committed": 200 - odd, "fail:aborted": odd} and load.done == 200
    assert json.loads((tmp_path / "locust" / "merge.json").read_text())["problems"] == []
    assert (tmp_path / "locust" / "report.html").is_file()
