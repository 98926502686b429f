"""Running one scenario: bring the system up, drive load and faults on the seeded
schedule, heal, drain, and leave the run directory (docs/run-format.md)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import engine, implementations, store
from harness.checkers import write_verdict
from harness.collect import Progress, collect, save_logs, wait_drained
from harness.images import Images
from harness.load import open_load
from harness.nemesis import Nemesis, on_time
from harness.nemesis.own_loop import OwnLoop
from harness.observe import EngineLost, Sampler, interval_for
from harness.observe.events import await_engine
from harness.observe.selftrace import SelfTrace
from harness.observe.telemetry import TelemetryTap
from harness.report import write_index, write_report
from harness.scenario import SOAK, Scenario
from harness.scenario.clock_faults import CLOCK_FAULTS
from harness.scenario.hosts import as_hosts
from harness.schedule import drive, plan
from harness.topology.plan import SystemConfig
from harness.topology.system import System


def system_config(
    s: Scenario,
    sut_image: str | None = None,
    buggify: tuple[str, ...] = (),
    sut: str | None = None,
    load_workers: int = 0,
) -> SystemConfig:
    """The system a scenario runs on; `sut` (--sut) or `sut_image` (--sut-image) for every node whose
    implementation the scenario does not name (docs/implementations.md); `load_workers` (--load-workers)
    Locust workers, placed where the hosts name them."""
    st = s.stream
    chosen = implementations.choose(s.topology.agents, s.topology.implementations, sut)
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
        implementations=tuple(sorted(chosen.items())),
        buggify=tuple(buggify),
        faultfs=s.topology.faultfs_nodes,
        nats_sync_interval=s.topology.nats.config_value(),
        nats_nodes=s.topology.nats.nodes,
        stream_replicas=s.topology.nats.stream_replicas,
        clock=any(kind in CLOCK_FAULTS for kind in s.fault_kinds()),
        surreal_clock=any(f.fault in CLOCK_FAULTS and "surrealdb" in f.targets for f in s.faults),
        analytics=s.topology.analytics,
        changefeed_retention=s.topology.surreal_retention,
        hosts=as_hosts(s.topology.hosts),
        load_workers=load_workers,
    )


@dataclass
class RunResult:
    dir: Path
    run_id: str
    seed: int
    verdict: dict[str, Any] = field(default_factory=dict)  # verdict.json, as the checkers wrote it
    summary: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None  # report.html, when it could be written
    rerun: str = ""  # the command that runs it again as it ran (scenario.json's `rerun`)

    @property
    def passed(self) -> bool:
        return self.verdict.get("valid") is True


def rerun_command(
    path: str | Path,
    seed: int,
    *,
    param_id: str = "",
    agents: int | None = None,
    sut_image: str | None = None,
    buggify: tuple[str, ...] = (),
    pytest_id: str | None = None,
    sut: str | None = None,
    load_workers: int = 0,
    soak_duration: str | None = None,
    hosts_file: str | None = None,
) -> str:
    """The one command that runs this scenario again as it ran: `solar-chaos run`, or pytest given the
    item's node id. Parameter set, agent count, system under test (--sut or --sut-image; the scenario's
    own implementations are in its file), seed and a --hosts file included."""
    if pytest_id is not None:
        words = ["pytest", pytest_id]
    else:
        words = ["solar-chaos", "run", str(path)] + (["--param", param_id] if param_id else [])
    words += ["--seed", str(seed)]
    if agents:
        words += ["--agents", str(agents)]
    if sut:
        words += ["--sut", sut]
    if sut_image:
        words += ["--sut-image", sut_image]
    for flag in buggify:
        words += ["--buggify", flag]
    if load_workers:
        words += ["--load-workers", str(load_workers)]
    if soak_duration:
        words += ["--soak-duration", soak_duration]
    if hosts_file:
        words += ["--hosts", hosts_file]
    return shlex.join(words)


def _nodes_record(images: Images, cfg: SystemConfig) -> dict[str, dict[str, str | None]]:
    """scenario.json's sut.nodes: each node of the system under test, its implementation (None: an image of
    another origin, --sut-image) and the image it ran."""
    nodes = ["orchestrator", "projector", *cfg.agent_names(), *(["analytics"] if cfg.analytics else [])]
    chosen = dict(cfg.implementations)
    images_of = implementations.node_images(images, cfg, nodes)
    rest = None if cfg.sut_image else implementations.DEFAULT
    return {n: {"implementation": chosen.get(n, rest), "image": images_of[n]} for n in nodes}


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
    buggify: tuple[str, ...] = (),
    source: str | Path | None = None,
    agents: int | None = None,
    progress: Progress | None = None,
    keep_running: bool = False,
    sut: System | None = None,
    load_workers: int = 0,
    soak_duration: str | None = None,
    sut_name: str | None = None,
    hosts_file: str | None = None,
) -> RunResult:
    """Run one scenario, leave its run directory and judge it (verdict.json). With `sut`, a running
    system of the same configuration is reset and reused (and left running); otherwise one is brought
    up and torn down. `sut_name` (--sut): the implementation of every node the scenario does not name;
    `hosts_file` (--hosts): named in the re-run command (its hosts are already in `scenario`)."""
    implementations.exclusive(sut_name, sut_image)
    config = system_config(scenario, sut_image, buggify, sut_name, load_workers)
    if why := implementations.unknown_bugs(
        images, set(implementations.image_roles(config)), buggify, sut_image
    ):
        raise implementations.ImplementationError(f"{scenario.name}: {why}")
    resolved = scenario.resolved(seed)
    seed = resolved["seed"]
    # Beside the checkers' fields (the format ignores unknown ones): what was put under test, node by node.
    resolved["sut"] = {
        "image": sut_image,
        "implementation": sut_name,
        "buggify": list(buggify),
        "nodes": _nodes_record(images, config),
    }
    if load_workers:  # --load-workers N: the load runs on Locust, one master and N workers
        resolved["load"] |= {"engine": "locust", "workers": load_workers}
    # The one command that runs it again as it ran (`source`: its file; `agents`: an --agents override).
    resolved["rerun"] = rerun_command(
        source or f"scenarios/{scenario.name}.yaml",
        seed,
        param_id=param_id,
        load_workers=load_workers,
        agents=agents,
        sut_image=sut_image,
        buggify=buggify,
        soak_duration=soak_duration if SOAK in scenario.markers else None,
        sut=sut_name,
        hosts_file=hosts_file,
    )
    run_id = engine.new_run_id()
    out = reports / run_id / scenario_dir_name(scenario, param_id)
    out.mkdir(parents=True)
    store.write_json(out / store.SCENARIO, resolved)
    say = progress or (lambda _: None)

    timings: dict[str, float] = {}
    owned = contextlib.ExitStack()  # the system's `with`, when this run brings it up
    engine_back: bool | None = None  # after the engine went away: whether it came back
    try:
        t = time.monotonic()
        if sut is None:
            # Bring-up and teardown block for seconds: both run in a worker thread.
            system = System(images, config, run_id)
            sut = await asyncio.to_thread(owned.enter_context, system)
            timings["bringup_s"] = time.monotonic() - t
            say(f"system up in {timings['bringup_s']:.1f} s ({sut.run_id})")
        else:
            timings["reset_s"] = await asyncio.to_thread(sut.reset)
            say(f"system {sut.run_id} reset in {timings['reset_s']:.2f} s")
        try:
            t = time.monotonic()
            await _drive(scenario, seed, sut, out, say, f"{run_id}-s{seed}", timings, load_workers)
            timings["drive_s"] = time.monotonic() - t
            t = time.monotonic()
            within = scenario.expect.recovery.drained_within
            summary = await collect(sut, out, say, timings.get("t0_unix"), within)
            timings["collect_s"] = time.monotonic() - t
        except EngineLost as e:
            # Nothing to collect: the stream and the store went with the engine. The history stays.
            say(f"engine lost: {e}")
            engine_back = await asyncio.to_thread(await_engine, say)
            left = (
                "what the engine kept of the run is removed"
                if engine_back
                else "`solar-chaos clean` removes what the run left once the engine answers"
            )
            why = f"{e}. The run cannot be judged; its history so far is in {out}; {left}"
            raise EngineLost(why) from None
        finally:
            # Beside the run's files: how long each phase took (the format allows extra files).
            store.write_json(
                out / store.TIMINGS, {k: round(v, 6 if k == "t0_unix" else 3) for k, v in timings.items()}
            )
            await asyncio.to_thread(save_logs, sut, out)
            if keep_running:
                say(f"keeping run {sut.run_id} up (--keep-running); remove it with: solar-chaos clean --all")
                if sut.cfg.faultfs:  # the daemons die with the harness (docs/faultfs.md, "Lifetime")
                    nodes = ", ".join(sut.cfg.faultfs)
                    say(f"its faultfs volumes ({nodes}) end with this process (ENOTCONN once it exits)")
                owned.pop_all()  # never left: the system stays up
    finally:
        try:
            await asyncio.to_thread(owned.close)
        except Exception as e:
            if engine_back is not False:
                raise
            say(f"not removed, the engine being away: {e}")  # the labels let `solar-chaos clean` find it
    # The runner only writes the run directory; the verdict is the checkers', read from it alone.
    verdict = await asyncio.to_thread(write_verdict, out)
    report = None
    try:  # the human view; a failure here must not hide the verdict
        report = await asyncio.to_thread(write_report, out)
        await asyncio.to_thread(write_index, out.parent)
    except Exception as e:
        say(f"report not written: {type(e).__name__}: {e}")
    return RunResult(
        out, run_id, seed, verdict=verdict, summary=summary, report=report, rerun=resolved["rerun"]
    )


async def _drive(
    scenario: Scenario,
    seed: int,
    sut: System,
    out: Path,
    say: Progress,
    cid_prefix: str,
    timings: dict[str, float],
    workers: int = 0,
) -> None:
    # cid_prefix: unique per scenario run, also when a system is reused
    history, load = open_load(scenario, sut, out, seed, cid_prefix, workers, say)
    steps = plan(scenario, seed)
    nemesis = Nemesis(sut, history.record, load.answered)
    # The nemesis and its schedule on a loop of their own, at real-time priority, so that faults start on time
    own = OwnLoop()
    if own.refused:
        say(f"the nemesis runs at normal priority ({own.refused}); its faults may start later under load")
    sampler = Sampler(sut, out / store.SAMPLES, history.now, interval_for(scenario.load.duration), load.pids)
    tap = TelemetryTap(sut.nats_servers, out / store.TELEMETRY, history.now)
    stop_sampling = asyncio.Event()
    active: dict[str, str] = {}
    trace = SelfTrace(out)  # SOLAR_CHAOS_TRACEMALLOC=1: where the harness's own memory grows
    trace.start()

    async def faults() -> None:
        # Each step at its own time: a slow one (a crash's stop waits for readiness) delays no other.
        await own.run(drive(steps, nemesis, history.now, active))

    async def report() -> None:
        while not stop_sampling.is_set():
            c = load.counts  # the history's own, or summed from the Locust processes
            ok = c.get("ok:committed", 0) + c.get("ok:pending-commit", 0)
            fail = sum(v for k, v in c.items() if k.startswith("fail:"))
            info = sum(v for k, v in c.items() if k.startswith("info:"))
            faults_now = ", ".join(f"{k}({v})" for k, v in list(active.items())) or "none"  # another thread's
            say(
                f"t={history.now():6.1f}s  intents {load.done}/{load.plan.total}  ok {ok}  fail {fail}  "
                f"info {info}  faults: {faults_now}"
            )
            try:
                await asyncio.wait_for(stop_sampling.wait(), 1.0)
            except TimeoutError:
                pass

    try:
        await load.prepare()  # Locust's processes up, their users spawned, before t = 0
        await own.run(nemesis.prepare())  # and the nemesis's connections, so a fault at t = 0 is on time
        await sampler.prepare()  # and the sampler's, which would otherwise compete with it for the loop
        # A full garbage collection now and none of this heap's during the run; short GIL switches
        with on_time.frozen_heap(), on_time.short_switches():
            history.t0 = time.monotonic()  # t = 0 is the start of the load: fault times count from it
            timings["t0_unix"] = time.time()  # the same instant on the containers' clock (their log lines' t)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(sampler.run(stop_sampling))
                tg.create_task(tap.run(stop_sampling))
                tg.create_task(report())
                fault_task = tg.create_task(faults())
                traced = tg.create_task(trace.mark_after_warmup(scenario.load.duration))
                await load.run()
                traced.cancel()
                trace.finish()
                fault_task.cancel()  # faults still scheduled past the load's end are not started
                # Let a fault being applied right now finish first, or it could land after the heal.
                await asyncio.gather(fault_task, return_exceptions=True)
                await asyncio.shield(own.run(nemesis.heal_all()))
                say(f"load done at t={history.now():.1f}s; every fault healed")
                drained = scenario.expect.recovery.drained_within
                await wait_drained(sut, drained, say)
                stop_sampling.set()
    except* EngineLost as lost:  # the sampler's word: the engine, and every container with it, went away
        raise lost.exceptions[0] from None
    finally:
        stop_sampling.set()
        try:
            if sampler.events.lost is None:  # with the engine gone there is nothing to heal, nor to revive
                await asyncio.shield(own.run(nemesis.heal_all()))
        finally:
            await asyncio.to_thread(own.close)
        history.close()
        await asyncio.to_thread(load.finish, say)  # Locust: its shards and the harness's into history.jsonl
