"""Remote Locust workers (issue 32, harness/load/remote.py): the Locust master here and one worker in the
`load` image on each of two engines (a stand-in engine and this machine's, against a stand-in agent; two
stand-in engines running a placed system, the workers placed by the role `load`). The workers get t = 0
and the plan over Locust's messages, send their history lines back the same way, and the merged
history.jsonl holds every intent of the plan once, invoke before its answer, in time order, within the
plan's time."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import engine, store
from harness.history import History
from harness.load import open_load, worker_engines
from harness.load.locust_engine import LocustLoad, harness_shard
from harness.load.ops import LoadPlan, intents
from harness.scenario import Scenario
from harness.topology.engines import LocalEngines
from harness.topology.fleet import Target
from harness.topology.placement import Host
from harness.topology.plan import SystemConfig
from harness.topology.ports import route_address
from harness.topology.system import System
from tests.unit.test_load import Agent

# About 2 to 3 minutes of stand-in engines: past CI's budget, so CI deselects it and nightly-scenarios.yml
# runs it (`make test` runs it for a user). docs/operations.md, "CI".
pytestmark = [pytest.mark.docker, pytest.mark.nightly]

PLUMBING = {"intent_timeout_ms": 1000, "commit_timeout_ms": 2000}
SERVICES = ("toxiproxy", "nats", "surrealdb", "orchestrator", "projector")
PLAN = LoadPlan(rate=20, duration=6.0, keys=16, clients=4, timeout=5.0, seed=7)  # as the scenario's below


async def drive(load: LocustLoad, history: History) -> None:
    await load.prepare()
    history.t0 = time.monotonic()
    await load.run()


async def test_workers_on_a_stand_in_engine_and_this_one_send_the_plan_once(images, tmp_path: Path) -> None:
    ref = images.ensure(("load",))["load"]
    plan = LoadPlan(rate=50, duration=3, keys=8, clients=4, timeout=2.0, seed=5)
    agent = Agent()
    server = await asyncio.start_server(agent.handle, "0.0.0.0", 0)  # reached from the stand-in's bridge
    with LocalEngines(1, overlay=None, images=images) as standins:
        e = standins[0]
        here = route_address(e.ip)  # the host side of the stand-in's bridge: its containers reach it
        urls = {"agent-1": f"http://{here}:{server.sockets[0].getsockname()[1]}"}
        targets = [
            Target("standin-1", e.client, "0.0.0.0", e.ip, {}, local=False),
            Target("local", engine.client(), "127.0.0.1", "127.0.0.1", {}, local=True),
        ]
        history = History(harness_shard(tmp_path))
        load = LocustLoad(
            urls, history, plan, "run", tmp_path, remote=targets, image=ref, run_id=standins.run_id
        )
        async with server:
            try:
                await drive(load, history)
                answered = load.answered("agent-1")  # the repeat fault's view, from the relayed shards
            finally:
                history.close()
                load.finish()
    assert not engine.list_runs(standins.run_id)

    ops = [json.loads(line) for line in (tmp_path / store.HISTORY).read_text().splitlines()]
    assert [op["t"] for op in ops] == sorted(op["t"] for op in ops)
    sent = [op for op in ops if op["type"] == "invoke"]
    planned = {(i.cid, i.agent, i.key, i.value) for i in intents(plan, list(urls), "run")}
    assert {(op["cid"], op["agent"], op["key"], op["value"]) for op in sent} == planned and len(sent) == 150
    assert Counter(op["process"].split(".")[0] for op in sent) == {"w0": 75, "w1": 75}
    assert Counter(op["cid"] for op in ops if op["type"] in ("ok", "fail")) == Counter(
        op["cid"] for op in sent
    )
    assert all(-0.05 <= op["t"] <= plan.duration + 0.5 for op in sent), "an intent sent off its time"
    assert len(answered) > 0 and len(agent.bodies) == 150
    merge = json.loads((tmp_path / "locust" / "merge.json").read_text())
    assert merge["problems"] == [] and set(merge["clock_bound_s"]) == {"0", "1"}, merge
    assert all(b is not None and 0 < b < 0.5 for b in merge["clock_bound_s"].values()), merge
    print(f"\nfigure: clock bound (sc-start round trip) per worker: {merge['clock_bound_s']}")
    assert (tmp_path / "locust" / "load-1.out").stat().st_size > 0  # the workers' logs kept


def test_two_remote_workers_placed_by_the_role_load_drive_a_plan_and_their_shards_are_merged(
    images, tmp_path: Path
) -> None:
    """As a run with `--load-workers 2` and hosts naming `load` on both engines: the runner's own path
    (SystemConfig.load_workers, the placement, harness.load.open_load)."""
    hosts = (Host("standin-1", (*SERVICES, "load")), Host("standin-2", ("agents", "load")))
    scenario = Scenario.model_validate(
        {
            "name": "remote-load",
            "load": {"rate": 20, "duration": "6s", "keys": 16, "clients": 4, "timeout": "5s"},
            "topology": {"agents": 2},
        }
    )
    with System(images, SystemConfig(agents=2, hosts=hosts, load_workers=2, **PLUMBING)) as sut:
        assert [t.name for t in worker_engines(sut, 2)] == ["standin-1", "standin-2"]  # load-1, load-2
        said: list[str] = []
        history, load = open_load(scenario, sut, tmp_path, PLAN.seed, "rw", workers=2, say=said.append)
        assert load.plan == PLAN
        assert isinstance(load, LocustLoad) and load.remote is not None, "the workers were not placed"
        try:
            asyncio.run(drive(load, history))
        finally:
            history.close()
            load.finish()
        print("\n" + "\n".join(said))
        run_id = sut.run_id
    assert not engine.list_runs(run_id), "the engines, containers or networks of the run were left behind"

    ops = [json.loads(line) for line in (tmp_path / store.HISTORY).read_text().splitlines()]
    merge = json.loads((tmp_path / "locust" / "merge.json").read_text())
    assert merge["problems"] == [] and merge["lines"] == len(ops) == 2 * PLAN.total, merge
    bounds = merge["clock_bound_s"]
    assert set(bounds) == {"0", "1"} and all(b is not None and 0 < b < 0.5 for b in bounds.values()), bounds
    print(f"figure: clock bound (sc-start round trip) per worker: {bounds}")
    assert [op["t"] for op in ops] == sorted(op["t"] for op in ops)
    invokes = {op["cid"]: op for op in ops if op["type"] == "invoke"}
    answers = Counter(op["cid"] for op in ops if op["type"] != "invoke")
    assert len(invokes) == PLAN.total and answers == Counter(list(invokes))  # each intent once, answered once
    assert {op["process"].split(".")[0] for op in ops} == {"w0", "w1"}  # both workers sent
    for op in ops:
        if op["type"] == "invoke":
            assert -0.05 <= op["t"] <= PLAN.duration + 1.0, op  # sent on time, t = 0 being the master's
        else:
            assert op["t"] >= invokes[op["cid"]]["t"], op
            assert op["t"] <= PLAN.duration + PLAN.timeout + 1.0, op
    ok = sum(op["type"] == "ok" for op in ops)
    assert ok >= PLAN.total * 0.9, Counter(
        op.get("outcome", op["type"]) for op in ops if op["type"] != "invoke"
    )
    assert (tmp_path / "locust" / "load-1.out").stat().st_size > 0  # the workers' logs kept


SCENARIO = """\
name: remote-load
description: a short run whose Locust workers run on two stand-in engines, an outage of NATS in it
topology: {agents: 2}
load: {rate: 20, duration: 8s}
faults:
  - {at: 2s, for: 3s, fault: outage, target: nats, mode: refuse}
"""
HOSTS_FILE = """\
- {engine: standin-1, nodes: [toxiproxy, nats, surrealdb, orchestrator, projector]}
- {engine: standin-2, nodes: [agents, load]}
- {engine: standin-3, nodes: [load]}
"""


def test_a_run_with_workers_placed_on_other_engines_is_judged_like_any(tmp_path: Path) -> None:
    """`solar-chaos run FILE --hosts HOSTS --load-workers 2` with the hosts naming `load`: the run is valid,
    each worker sent its share from its engine, and a worker's end with the load is no unplanned death (it
    was once: the containers checker took load-1's exit for a node's)."""
    from harness.cli import main as cli

    (tmp_path / "remote-load.yaml").write_text(SCENARIO)
    (tmp_path / "hosts.yaml").write_text(HOSTS_FILE)
    reports = tmp_path / "reports"
    args = ["run", str(tmp_path / "remote-load.yaml"), "--hosts", str(tmp_path / "hosts.yaml")]
    code = cli([*args, "--load-workers", "2", "--reports", str(reports)])
    (run,) = reports.glob("*/remote-load")
    verdict = json.loads((run / "verdict.json").read_text())
    assert code == 0 and verdict["valid"] is True, {
        k: v for k, v in verdict["checks"].items() if v["valid"] is not True
    }
    merge = json.loads((run / "locust" / "merge.json").read_text())
    assert merge["problems"] == [] and set(merge["clock_bound_s"]) == {"0", "1"}, merge
    assert merge["per_shard"]["history-0.jsonl"] > 0 and merge["per_shard"]["history-1.jsonl"] > 0, merge
    assert json.loads((run / "scenario.json").read_text())["load"]["workers"] == 2
