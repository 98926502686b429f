"""What the nemesis does when (Jepsen's generator, as data): a scenario's faults and its seeded `random`
block expanded into a time-ordered list of start and stop steps."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from harness.scenario import (
    FAULTS,
    BaseFault,
    RandomFaults,
    Scenario,
    ScenarioError,
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


def expand_random(block: RandomFaults, agents: int, end: float, seed: int) -> list[BaseFault]:
    """The random block as concrete faults: every `interval` (never before the previous one stopped) a
    fault of an allowed kind on allowed targets, for `duration`, all inside the block's window and the
    load."""
    targets = list(dict.fromkeys(block.targets or node_names(agents)))
    kinds = [kind for kind in block.faults if FAULTS[kind].random_applies(targets)]
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
        cls = FAULTS[kind]
        fields = {"fault": kind, "at": round(t, 6), "for": length, **cls.random_fields(rng, targets, agents)}
        faults.append(cls.model_validate(fields))
        t = round(max(t + block.interval, t + length), 6)
    return faults
