"""Load (Jepsen's client): intents against the agents' HTTP API from one seeded plan (`ops`), sent open
loop by one of two engines: asyncio in the harness's own loop (`asyncio_engine`, over `sender`'s
queue-fed connections; the default), or Locust as subprocesses (`locust_engine`, `locustfile`), whose
history shards are merged into history.jsonl (`shards`). `open_load` picks the engine for a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness import store
from harness.history import History
from harness.load.asyncio_engine import Load
from harness.load.locust_engine import LocustLoad, harness_shard
from harness.load.ops import ACCEPTED, ANSWERS_KEPT, REFUSED, Answered, Intent, LoadPlan, intents

if TYPE_CHECKING:
    from harness.scenario import Scenario
    from harness.topology.system import System

__all__ = [
    "ACCEPTED",
    "ANSWERS_KEPT",
    "REFUSED",
    "Answered",
    "Intent",
    "Load",
    "LoadPlan",
    "LocustLoad",
    "engine_of",
    "intents",
    "open_load",
    "plan_of",
]


def engine_of(scenario: Scenario, workers: int = 0) -> str:
    """The engine a run uses: Locust when `--load-workers N` asks for its distributed mode, else the
    scenario's `load.engine`."""
    return "locust" if workers else scenario.load.engine


def plan_of(scenario: Scenario, seed: int) -> LoadPlan:
    s = scenario.load
    return LoadPlan(
        rate=s.rate,
        duration=s.duration,
        keys=s.keys,
        clients=s.clients,
        timeout=s.timeout,
        seed=seed,
        cids=s.cids,
    )


def open_load(
    scenario: Scenario,
    sut: System,
    out: Path,
    seed: int,
    cid_prefix: str,
    workers: int = 0,
    say: Callable[[str], None] | None = None,
) -> tuple[History, Load | LocustLoad]:
    """The run's history and its load. With Locust the harness's own lines go to a shard of their own,
    merged with the load processes' into history.jsonl by the load's `finish()`."""
    urls = {a: sut.http_url(a) for a in sut.cfg.agent_names()}
    plan = plan_of(scenario, seed)
    if engine_of(scenario, workers) == "asyncio":
        history = History(out / store.HISTORY)
        return history, Load(urls, history, plan, cid_prefix)
    history = History(harness_shard(out))
    return history, LocustLoad(urls, history, plan, cid_prefix, out, workers, say)
