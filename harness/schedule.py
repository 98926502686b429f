"""What the nemesis does when (Jepsen's generator, as data): a scenario's faults and its seeded `random`
block expanded into a time-ordered list of start and stop steps."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from harness.scenario import (
    FAULTS,
    BaseFault,
    RandomFaults,
    Scenario,
    ScenarioError,
    data_plane_links,
    node_names,
)

Action = Literal["start", "stop"]
_ORDER = {"stop": 0, "start": 1}  # at one instant, heal first: a new fault never overlaps the last one


@dataclass(frozen=True)
class Step:
    at: float  # seconds from the start of the load
    action: Action
    fault_id: str
    fault: BaseFault


def plan(scenario: Scenario, seed: int) -> list[Step]:
    """Every start and stop of the scenario's faults in time order (stops before starts at one instant).
    The file's faults are f1, f2, … in file order, the random block's r1, r2, …; a fault without an end
    stops when the load ends. The same scenario and seed always give the same plan."""
    end = scenario.load.duration
    faults = [(f"f{i}", fault) for i, fault in enumerate(scenario.faults, 1)]
    if scenario.random is not None:
        block_seed = scenario.random.seed if scenario.random.seed is not None else seed
        made = expand_random(scenario.random, scenario.topology.agents, end, block_seed)
        faults += [(f"r{i}", fault) for i, fault in enumerate(made, 1)]
    steps: list[Step] = []
    for fault_id, fault in faults:
        steps.append(Step(fault.at, "start", fault_id, fault))
        stop_at = fault.stop_at
        # Past the load's end the runner heals everything anyway; the plan says so explicitly.
        steps.append(Step(end if stop_at is None else min(stop_at, end), "stop", fault_id, fault))
    order = {id(step): i for i, step in enumerate(steps)}
    return sorted(steps, key=lambda s: (s.at, _ORDER[s.action], order[id(s)]))


# The random nemesis: one maker per kind, from the allowed targets to the fields of a fault of that kind.


@dataclass(frozen=True)
class _Maker:
    applies: Callable[[list[str]], bool]  # can a fault of this kind act on these targets?
    make: Callable[[random.Random, list[str], int], dict[str, Any]]  # (rng, targets, agents) -> fields


def _any(targets: list[str]) -> bool:
    return bool(targets)


def _partition_pool(targets: list[str]) -> list[str]:
    # Splitting the agents is the partition that matters (quorum); services only when too few agents.
    agents = [t for t in targets if t.startswith("agent-")]
    return agents if len(agents) >= 2 else targets


def _partition(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    pool = _partition_pool(targets)
    shuffled = rng.sample(pool, len(pool))
    minority = rng.randint(1, max(1, (len(pool) - 1) // 2))
    groups = [sorted(shuffled[:minority]), sorted(shuffled[minority:])]
    return {"groups": groups, "mode": rng.choice(["refuse", "blackhole"])}


def _isolate(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {"target": rng.choice(targets), "mode": rng.choice(["refuse", "blackhole"])}


def _services(targets: list[str]) -> list[str]:
    return [t for t in targets if t in ("nats", "surrealdb")]


def _outage(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {
        "target": rng.choice(_services(targets)),
        "mode": rng.choice(["refuse", "blackhole", "kill", "pause"]),
    }


def _node(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {"target": rng.choice(targets)}


def _links_of(rng: random.Random, targets: list[str], agents: int) -> list[str]:
    """Every link to or from one target: the node seen as slow, lossy or flaky by everyone it talks to."""
    node = rng.choice(targets)
    return [f"{a}>{b}" for a, b in data_plane_links(agents) if node in (a, b)]


def _latency(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    latency_ms = rng.randint(50, 300)
    jitter_ms = rng.randint(0, latency_ms // 4)
    return {
        "links": _links_of(rng, targets, agents),
        "latency": latency_ms / 1000,
        "jitter": jitter_ms / 1000,
    }


def _bandwidth(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {"links": _links_of(rng, targets, agents), "rate_kbps": rng.randint(16, 256)}


def _slow_close(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {"links": _links_of(rng, targets, agents), "delay": rng.randint(100, 2000) / 1000}


def _reset_peer(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {"links": _links_of(rng, targets, agents), "timeout": rng.randint(0, 1000) / 1000}


def _slicer(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    average = rng.randint(16, 256)
    return {
        "links": _links_of(rng, targets, agents),
        "average_size": average,
        "size_variation": rng.randint(0, average // 2),
        "delay": rng.randint(0, 1000) / 1_000_000,  # Toxiproxy's slicer delays in microseconds
    }


def _limit_data(rng: random.Random, targets: list[str], agents: int) -> dict[str, Any]:
    return {"links": _links_of(rng, targets, agents), "bytes": rng.randint(1024, 65536)}


MAKERS: dict[str, _Maker] = {
    "partition": _Maker(lambda t: len(_partition_pool(t)) >= 2, _partition),
    "isolate": _Maker(_any, _isolate),
    "outage": _Maker(lambda t: bool(_services(t)), _outage),
    "latency": _Maker(_any, _latency),
    "bandwidth": _Maker(_any, _bandwidth),
    "slow_close": _Maker(_any, _slow_close),
    "reset_peer": _Maker(_any, _reset_peer),
    "slicer": _Maker(_any, _slicer),
    "limit_data": _Maker(_any, _limit_data),
    "crash": _Maker(_any, _node),
    "pause": _Maker(_any, _node),
}
if set(MAKERS) != set(FAULTS):  # a kind added to the scenario model needs its maker here
    raise ImportError(f"random fault makers {sorted(MAKERS)} do not match the fault kinds {sorted(FAULTS)}")


def expand_random(block: RandomFaults, agents: int, end: float, seed: int) -> list[BaseFault]:
    """The random block as concrete faults: every `interval` (never before the previous one stopped) a
    fault of an allowed kind on allowed targets, for `duration`, all inside the block's window and the
    load."""
    targets = list(dict.fromkeys(block.targets or node_names(agents)))
    kinds = [kind for kind in block.faults if MAKERS[kind].applies(targets)]
    if not kinds:
        raise ScenarioError(
            f"random: none of the fault kinds {', '.join(block.faults)} can act on the targets "
            f"{', '.join(targets)}; allowed: two targets or more for a partition, nats or surrealdb among "
            "the targets for an outage"
        )
    rng = random.Random(seed)
    window_end = end if block.for_ is None else min(block.at + block.for_, end)
    faults: list[BaseFault] = []
    t = block.at
    while t < window_end:
        kind = rng.choice(kinds)
        length = round(min(block.duration, window_end - t), 6)
        if length <= 0:  # what is left of the window rounds to nothing
            break
        fields = {"fault": kind, "at": round(t, 6), "for": length, **MAKERS[kind].make(rng, targets, agents)}
        faults.append(FAULTS[kind].model_validate(fields))
        t = round(max(t + block.interval, t + length), 6)
    return faults
