"""What the nemesis does when (Jepsen's generator, as data): a scenario's faults and its seeded `random`
block expanded into a time-ordered list of start and stop steps, and `drive`, which runs them on time."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

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
        made = expand_random(
            scenario.random, scenario.topology.agents, end, block_seed, scenario.topology.nats.nodes
        )
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
    nats = scenario.topology.nats.nodes
    if len(scenario.faults) > MAX_PLANNED_FAULTS:
        yield ("faults",), f"{len(scenario.faults):,} faults", f"at most {MAX_PLANNED_FAULTS:,} faults"
        return
    if block is None:
        return
    if not block.kinds(agents, nats):
        yield (
            ("random", "faults"),
            f"none of the fault kinds {', '.join(block.faults)} can act on the targets "
            f"{', '.join(block.chosen_targets(agents, nats))}",
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


def expand_random(block: RandomFaults, agents: int, end: float, seed: int, nats: int = 1) -> list[BaseFault]:
    """The random block as concrete faults: every `interval` (never before the previous one stopped) a
    fault of an allowed kind on allowed targets, for `duration`, all inside the block's window and the
    load."""
    targets = block.chosen_targets(agents, nats)
    kinds = block.kinds(agents, nats)
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
        drawn = cls.random_fields(rng, block.targets_for(kind, agents, nats), agents, nats)
        fields = {"fault": kind, "at": at, "for": length, **drawn}
        faults.append(cls.model_validate(fields))
    return faults


class Driven(Protocol):
    """What `drive` acts on: the nemesis (harness/nemesis)."""

    async def start(self, fault: BaseFault, fault_id: str, scheduled: float | None = None) -> None: ...

    async def stop(self, fault_id: str) -> None: ...


async def _sleep_until(now: Callable[[], float], at: float) -> None:
    if (delay := at - now()) > 0:
        await asyncio.sleep(delay)


async def drive(
    steps: list[Step],
    nemesis: Driven,
    now: Callable[[], float],
    active: dict[str, str] | None = None,
    sleep_until: Callable[[float], Awaitable[None]] | None = None,
) -> None:
    """Run the plan's steps, each at its own time: a slow step (a crash's stop waits until the container is
    ready again) never delays another fault. A fault's stop waits for its own start to finish; a start
    waits for the stops of the same instant to finish (heal first, as `plan` orders them). `active` holds
    fault id -> kind for the faults started and not stopped.

    Cancelled (the load ended), the steps not yet begun are dropped and the ones being applied finish
    first, so none lands after the heal that follows; the first step to fail does the same, then raises."""
    wait = sleep_until or (lambda at: _sleep_until(now, at))
    active = {} if active is None else active
    begun: set[asyncio.Task[None]] = set()
    starts: dict[str, asyncio.Task[None]] = {}
    stops_at: dict[float, list[asyncio.Task[None]]] = {}

    async def run(step: Step, after: list[asyncio.Task[None]]) -> None:
        await wait(step.at)
        if after:
            await asyncio.wait(after)
        begun.add(asyncio.current_task())  # type: ignore[arg-type]
        if step.action == "start":
            await nemesis.start(step.fault, step.fault_id, scheduled=step.at)
            active[step.fault_id] = step.fault.fault
        else:
            await nemesis.stop(step.fault_id)
            active.pop(step.fault_id, None)

    tasks: list[asyncio.Task[None]] = []
    for step in steps:  # in plan order: a stop's start and an instant's stops come before
        if step.action == "start":
            after = list(stops_at.get(step.at, []))
        else:
            after = [starts[step.fault_id]] if step.fault_id in starts else []
        task = asyncio.create_task(run(step, after), name=f"{step.action} {step.fault_id}")
        tasks.append(task)
        if step.action == "start":
            starts[step.fault_id] = task
        else:
            stops_at.setdefault(step.at, []).append(task)
    if not tasks:  # a scenario without faults
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
    finally:
        for task in tasks:
            if task not in begun:
                task.cancel()
        # The ones being applied finish (their errors are the first's consequences, or heal_all's to see).
        await asyncio.gather(*tasks, return_exceptions=True)
