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
from harness.load.remote import ROLE as LOAD_ROLE
from harness.shape import load_names

if TYPE_CHECKING:
    from harness.scenario import Scenario
    from harness.topology.fleet import Target
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
    "worker_engines",
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


def worker_engines(sut: System, workers: int) -> list[Target]:
    """The engine of each of `workers` remote Locust workers: the placement's engines of nodes load-1..N,
    over several engines; none (the workers stay local subprocesses) when the placement places no such
    node (docs/scale.md, "Load from other hosts")."""
    fleet = sut.run.fleet
    if not workers or not fleet.several:
        return []
    try:
        names = [fleet.placement.engine_of(node) for node in load_names(workers)]  # type: ignore[union-attr]
    except KeyError:
        return []
    return [fleet.targets[n] for n in names]


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
    remote = worker_engines(sut, workers)
    image = sut.images.ensure((LOAD_ROLE,))[LOAD_ROLE] if remote else ""
    return history, LocustLoad(
        urls, history, plan, cid_prefix, out, workers, say, remote=remote, image=image, run_id=sut.run_id
    )
