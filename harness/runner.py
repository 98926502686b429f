"""Running one scenario: bring the system up, drive load and faults on the seeded
schedule, heal, drain, and leave the run directory (docs/run-format.md)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import engine, store
from harness.collect import Progress, collect, save_logs, wait_drained
from harness.history import History
from harness.images import Images
from harness.load import Load, LoadPlan
from harness.nemesis import Nemesis
from harness.observe import Sampler
from harness.scenario import Scenario
from harness.schedule import plan
from harness.store import read_jsonl
from harness.topology.system import System, SystemConfig


def system_config(s: Scenario, sut_image: str | None = None) -> SystemConfig:
    st = s.stream
    return SystemConfig(
        agents=s.topology.agents,
        quorum=s.topology.quorum,
        buffer_cap=s.topology.buffer_cap,
        intent_timeout_ms=round(s.topology.intent_timeout * 1000),
        commit_timeout_ms=round(s.topology.commit_timeout * 1000),
        replay_interval_ms=round(s.topology.replay_interval * 1000),
        duplicate_window_s=st.duplicate_window,
        stream_max_msgs=st.max_msgs or -1,
        stream_max_bytes=st.max_bytes or -1,
        stream_max_age_s=st.max_age or 0,
        sut_image=sut_image,
    )


@dataclass
class RunResult:
    dir: Path
    run_id: str
    seed: int
    problems: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


def scenario_dir_name(s: Scenario, param_id: str = "") -> str:
    if not param_id:
        return s.name
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in param_id.replace("=", "-"))
    return f"{s.name}[{safe}]"


async def run_scenario(
    scenario: Scenario,
    *,
    images: Images,
    reports: Path,
    seed: int | None = None,
    param_id: str = "",
    sut_image: str | None = None,
    progress: Progress | None = None,
    keep_running: bool = False,
    sut: System | None = None,
) -> RunResult:
    """Run one scenario. With `sut`, a running system of the same configuration is reset
    and reused (and left running); otherwise one is brought up and torn down."""
    resolved = scenario.resolved(seed)
    seed = resolved["seed"]
    run_id = engine.new_run_id()
    out = reports / run_id / scenario_dir_name(scenario, param_id)
    out.mkdir(parents=True)
    store.write_json(out / store.SCENARIO, resolved)
    say = progress or (lambda _: None)

    timings: dict[str, float] = {}
    owned = contextlib.ExitStack()  # the system's `with`, when this run brings it up
    try:
        t = time.monotonic()
        if sut is None:
            # Bring-up and teardown block for seconds: both run in a worker thread.
            system = System(images, system_config(scenario, sut_image), run_id)
            sut = await asyncio.to_thread(owned.enter_context, system)
            timings["bringup_s"] = time.monotonic() - t
            say(f"system up in {timings['bringup_s']:.1f} s ({sut.run_id})")
        else:
            timings["reset_s"] = await asyncio.to_thread(sut.reset)
            say(f"system {sut.run_id} reset in {timings['reset_s']:.2f} s")
        try:
            t = time.monotonic()
            await _drive(scenario, seed, sut, out, say, cid_prefix=f"{run_id}-s{seed}")
            timings["drive_s"] = time.monotonic() - t
            t = time.monotonic()
            summary = await collect(sut, out, say)
            timings["collect_s"] = time.monotonic() - t
        finally:
            # Beside the run's files: how long each phase took (the format allows extra files).
            store.write_json(out / store.TIMINGS, {k: round(v, 3) for k, v in timings.items()})
            await asyncio.to_thread(save_logs, sut, out)
            if keep_running:
                say(f"keeping run {sut.run_id} up (--keep-running); remove it with: solar-chaos clean --all")
                owned.pop_all()  # never left: the system stays up
    finally:
        await asyncio.to_thread(owned.close)
    result = RunResult(out, run_id, seed, summary=summary)
    result.problems = interim_check(scenario, out)
    return result


async def _drive(
    scenario: Scenario, seed: int, sut: System, out: Path, say: Progress, cid_prefix: str
) -> None:
    history = History(out / store.HISTORY)
    nemesis = Nemesis(sut, history.record)
    steps = plan(scenario, seed)
    load = Load(
        sut,
        history,
        LoadPlan(
            rate=scenario.load.rate,
            duration=scenario.load.duration,
            keys=scenario.load.keys,
            clients=scenario.load.clients,
            timeout=scenario.load.timeout,
            seed=seed,
        ),
        cid_prefix=cid_prefix,  # unique per scenario run, also when a system is reused
    )
    sampler = Sampler(sut, out / store.SAMPLES, history.now)
    stop_sampling = asyncio.Event()
    active: dict[str, str] = {}

    async def faults() -> None:
        for step in steps:
            delay = step.at - history.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if step.action == "start":
                await nemesis.start(step.fault, step.fault_id)
                active[step.fault_id] = step.fault.fault
            else:
                await nemesis.stop(step.fault_id)
                active.pop(step.fault_id, None)

    async def report() -> None:
        while not stop_sampling.is_set():
            c = history.counts
            ok = c.get("ok:committed", 0) + c.get("ok:pending-commit", 0)
            fail = sum(v for k, v in c.items() if k.startswith("fail:"))
            info = sum(v for k, v in c.items() if k.startswith("info:"))
            faults_now = ", ".join(f"{k}({v})" for k, v in active.items()) or "none"
            say(
                f"t={history.now():6.1f}s  intents {load.done}/{load.plan.total}  ok {ok}  fail {fail}  "
                f"info {info}  faults: {faults_now}"
            )
            try:
                await asyncio.wait_for(stop_sampling.wait(), 1.0)
            except TimeoutError:
                pass

    history.t0 = time.monotonic()  # t = 0 is the start of the load: fault times count from it
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sampler.run(stop_sampling))
            tg.create_task(report())
            fault_task = tg.create_task(faults())
            await load.run()
            fault_task.cancel()  # faults still scheduled past the load's end are not started
            # Let a fault being applied right now finish first, or it could land after the heal.
            await asyncio.gather(fault_task, return_exceptions=True)
            await asyncio.shield(nemesis.heal_all())
            say(f"load done at t={history.now():.1f}s; every fault healed")
            drained = scenario.expect.recovery.drained_within
            await wait_drained(sut, drained, say)
            stop_sampling.set()
    finally:
        stop_sampling.set()
        await asyncio.shield(nemesis.heal_all())
        history.close()


def interim_check(scenario: Scenario, out: Path) -> list[str]:
    """Until the checkers land: every accepted intent is in SurrealDB exactly once (and in
    the stream, once, unless retention dropped it), nothing refused is in the store, and
    the scenario's expected outcomes happened."""
    history = read_jsonl(out / "history.jsonl")
    store = read_jsonl(out / "store.jsonl")
    stream = read_jsonl(out / "stream.jsonl")
    ok = {op["cid"]: op for op in history if op.get("type") == "ok"}
    failed = {op["cid"] for op in history if op.get("type") == "fail"}
    counts: dict[str, int] = {}
    for row in store:
        counts[row.get("cid")] = counts.get(row.get("cid"), 0) + 1
    problems = []
    for cid, op in ok.items():
        n = counts.get(cid, 0)
        if n != 1:
            problems.append(
                f"{cid}: accepted {op['outcome']} by {op.get('agent')} at t={op['t']}, {n} times in the store"
            )
    for cid in failed & set(counts):
        problems.append(f"{cid}: refused, yet in the store")
    in_stream: dict[str, int] = {}
    for msg in stream:
        in_stream[msg.get("cid")] = in_stream.get(msg.get("cid"), 0) + 1
    if scenario.expect.stream_exactly_once:
        for cid, n in in_stream.items():
            if n > 1:
                problems.append(f"{cid}: {n} times in the stream")
    if not scenario.stream.max_msgs and not scenario.stream.max_bytes and not scenario.stream.max_age:
        # Without retention limits the stream still holds every accepted intent.
        for cid, op in ok.items():
            if cid not in in_stream:
                problems.append(f"{cid}: accepted {op['outcome']} at t={op['t']}, absent from the stream")
    outcomes = [op.get("outcome") for op in history if op.get("type") in ("ok", "fail")]
    exp = scenario.expect
    committed = sum(1 for cid in ok if counts.get(cid))
    if committed < exp.min_committed:
        problems.append(f"{committed} intents committed, fewer than expect.min_committed={exp.min_committed}")
    for outcome, rule in (("aborted", exp.aborts), ("rejected", exp.rejections)):
        n = outcomes.count(outcome)
        if rule == "expected" and n == 0:
            problems.append(f"no intent was {outcome}, though expect says some must be")
        if rule == "forbidden" and n > 0:
            problems.append(f"{n} intents were {outcome}, though expect forbids it")
    return problems
