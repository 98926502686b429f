"""What the nemesis does when (Jepsen's generator, as data): a scenario's faults and its seeded `random`
block expanded into a time-ordered list of start and stop steps."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from harness.scenario import (
    FAULTS,
    BaseFault,
    RandomFaults,
    Scenario,
    ScenarioError,
)
from harness.scenario.types import MAX_PLANNED_FAULTS, Loc

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
    if problem := next(problems(scenario), None):
        path, what, allowed = problem
        raise ScenarioError(f"{'.'.join(map(str, path))}: {what}; allowed: {allowed}")
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


def problems(scenario: Scenario) -> Iterator[tuple[Loc, str, str]]:
    """What would make `plan` fail or run without bound for this scenario, whatever the seed, as (path in
    the file, what, allowed): `validate` asks before it plans, so a file it passes plans at run time."""
    block, agents, end = scenario.random, scenario.topology.agents, scenario.load.duration
    if len(scenario.faults) > MAX_PLANNED_FAULTS:
        yield ("faults",), f"{len(scenario.faults):,} faults", f"at most {MAX_PLANNED_FAULTS:,} faults"
        return
    if block is None:
        return
    if not block.kinds(agents):
        yield (
            ("random", "faults"),
            f"none of the fault kinds {', '.join(block.faults)} can act on the targets "
            f"{', '.join(block.chosen_targets(agents))}",
            _KINDS_NEED,
        )
        return
    room = MAX_PLANNED_FAULTS - len(scenario.faults)
    if planned(scenario) > MAX_PLANNED_FAULTS:
        beside = f" beside the file's {len(scenario.faults)}" if scenario.faults else ""
        yield (
            ("random",),
            f"plans more than {room:,} faults{beside} in {end:g}s (one every "
            f"{max(block.interval, block.duration):g}s)",
            f"at most {MAX_PLANNED_FAULTS:,} faults in all: a longer interval, or a shorter `for`",
        )


def planned(scenario: Scenario) -> int:
    """How many faults `plan` makes (the file's and the random block's), counted without making them;
    past MAX_PLANNED_FAULTS the count stops at MAX_PLANNED_FAULTS + 1."""
    count = len(scenario.faults)
    if scenario.random is not None and count <= MAX_PLANNED_FAULTS:
        windows = scenario.random.windows(scenario.load.duration)
        count += sum(1 for _ in itertools.islice(windows, MAX_PLANNED_FAULTS + 1 - count))
    return count


_KINDS_NEED = (
    "two targets or more for a partition, nats or surrealdb among the targets for an outage, an agent "
    "for a repeat"
)


def expand_random(block: RandomFaults, agents: int, end: float, seed: int) -> list[BaseFault]:
    """The random block as concrete faults: every `interval` (never before the previous one stopped) a
    fault of an allowed kind on allowed targets, for `duration`, all inside the block's window and the
    load."""
    targets = block.chosen_targets(agents)
    kinds = block.kinds(agents)
    if not kinds:
        raise ScenarioError(
            f"random: none of the fault kinds {', '.join(block.faults)} can act on the targets "
            f"{', '.join(targets)}; allowed: {_KINDS_NEED}"
        )
    rng = random.Random(seed)
    faults: list[BaseFault] = []
    for at, length in block.windows(end):
        kind = rng.choice(kinds)
        cls = FAULTS[kind]
        fields = {"fault": kind, "at": at, "for": length, **cls.random_fields(rng, targets, agents)}
        faults.append(cls.model_validate(fields))
    return faults
