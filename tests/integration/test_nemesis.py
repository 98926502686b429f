"""The nemesis against a real system: each fault family does what a user would see while it is active,
the system recovers once it stops, and the history pairs every start with its stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import engine
from harness.nemesis import Nemesis, NemesisError
from harness.scenario import FAULTS, BaseFault
from harness.topology.plan import SystemConfig
from harness.topology.system import System
from harness.toxiproxy import Toxic, Toxiproxy
from harness.waiting import await_until

pytestmark = pytest.mark.docker

AGENTS = ["agent-1", "agent-2", "agent-3"]
# Generous deadlines: these tests check faults and recovery, not latency, on a busy 2-core machine.
CONFIG = SystemConfig(agents=3, intent_timeout_ms=1000, commit_timeout_ms=2000)
CROSS_LINKS = ["agent-1>agent-2", "agent-1>agent-3", "agent-2>agent-1", "agent-3>agent-1"]


@pytest.fixture(scope="module")
def sut(images):
    with System(images, CONFIG) as s:
        yield s
    assert not engine.list_runs(s.run_id), "the system's containers or networks were left behind"


@pytest.fixture
def events() -> list[dict[str, Any]]:
    return []


@pytest.fixture
async def nemesis(sut: System, events: list[dict[str, Any]]) -> AsyncIterator[Nemesis]:
    n = Nemesis(sut, events.append)
    try:
        yield n
    finally:
        # Whatever the test did or failed to do, the next one starts on a healed, connected system.
        await n.heal_all()
        for agent in AGENTS:
            await asyncio.to_thread(sut.wait_connected, agent)


def fault(kind: str, **fields: Any) -> BaseFault:
    return FAULTS[kind].model_validate({"fault": kind, "at": 0, **fields})


async def post(sut: System, agent: str, value: int = 1) -> tuple[int, dict[str, Any]]:
    url = await asyncio.to_thread(sut.http_url, agent)
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{url}/intents", json={"key": "k", "value": value})
    return r.status_code, r.json()


async def outcome(sut: System, agent: str) -> str:
    return (await post(sut, agent))[1]["outcome"]


async def wait_committed(sut: System, agent: str, cids: list[str], timeout: float = 30) -> None:
    url = await asyncio.to_thread(sut.http_url, agent)

    async def all_committed() -> bool | list[str]:
        async with httpx.AsyncClient(timeout=2) as http:
            states = [(await http.get(f"{url}/intents/{cid}")).json().get("state") for cid in cids]
        return all(s == "committed" for s in states) or states

    await await_until(
        all_committed, f"{len(cids)} intents at {agent} to commit", timeout=timeout, interval=0.2
    )


async def wait_outcome(sut: System, agent: str, want: str, timeout: float = 30) -> None:
    """Until a new intent at `agent` ends `want` (a healed link may take a redial to be used again)."""

    async def got() -> bool | str:
        return (o := await outcome(sut, agent)) == want or o

    await await_until(got, f"an intent at {agent} to end {want}", timeout=timeout, interval=0.2)


async def status(sut: System, node: str) -> str:
    return (await asyncio.to_thread(sut.run.raw, node)).status


async def exited(sut: System, node: str) -> bool:
    return await status(sut, node) == "exited"


def frozen(sut: System, node: str) -> bool:
    """Whether the kernel holds every process of the node's container stopped: its cgroup's freezer state,
    read here from /proc and /sys (cgroup v1, this machine's, or v2)."""
    pid = sut.run.raw(node).attrs["State"]["Pid"]
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = next((ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] == "freezer"), None)
    if v1 is not None:
        return Path(f"/sys/fs/cgroup/freezer{v1}/freezer.state").read_text().strip() == "FROZEN"
    v2 = next(ln.split(":", 2)[2] for ln in lines if ln.startswith("0::"))
    return "frozen 1" in Path(f"/sys/fs/cgroup{v2}/cgroup.events").read_text().splitlines()


async def healthz(sut: System, node: str) -> int:
    url = await asyncio.to_thread(sut.http_url, node)
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{url}/healthz")).status_code


def assert_paired(events: list[dict[str, Any]], fault_id: str, kind: str, **target: Any) -> dict[str, Any]:
    """The fault's start and stop events, in that order, with the target holding `target`."""
    mine = [e for e in events if e["fault_id"] == fault_id]
    assert [e["f"] for e in mine] == ["start", "stop"], mine
    start, stop = mine
    for e in mine:
        assert (e["process"], e["type"], e["fault"]) == ("nemesis", "info", kind)
        assert "t" not in e, "the history stamps t itself"
    assert {k: start["target"].get(k) for k in target} == target
    assert "target" not in stop
    return start["target"]


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_a_partition_leaves_the_minority_without_quorum(
    sut: System, nemesis: Nemesis, events: list, mode: str
) -> None:
    groups = [["agent-1"], ["agent-2", "agent-3"]]
    await nemesis.start(fault("partition", groups=groups, mode=mode), "f1")

    assert await outcome(sut, "agent-1") == "aborted"
    assert await outcome(sut, "agent-2") == "committed"

    await nemesis.stop("f1")
    await nemesis.stop("f1")  # a second stop is nothing to do
    await wait_outcome(sut, "agent-1", "committed")
    target = assert_paired(events, "f1", "partition", groups=groups, mode=mode)
    assert sorted(target["links"]) == sorted(CROSS_LINKS)


async def test_latency_slows_the_quorum_of_the_agent_whose_links_it_is_on(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    # Both dial directions: libp2p opens streams on whichever connection the pair holds, often the one the
    # peer dialed, so a fault on agent-1>agent-2 alone may never touch agent-1's requests. 100 ms on each
    # link puts >= 200 ms on every round trip; a vote is one round trip on netsync's long-lived stream.
    await nemesis.start(fault("latency", links=["agent-1>agents", "agents>agent-1"], latency="100ms"), "f2")

    status_code, body = await post(sut, "agent-1")
    assert (status_code, body["outcome"]) == (200, "committed")
    assert body["quorum_ms"] >= 195  # two crossings of 100 ms, less timer rounding

    await nemesis.stop("f2")

    async def fast_again() -> bool | float:
        _, body = await post(sut, "agent-1")
        return body.get("quorum_ms", 1e9) < 200 or body.get("quorum_ms", body)

    await await_until(fast_again, "agent-1's quorum under 200 ms again", timeout=20, interval=0.2)
    target = assert_paired(events, "f2", "latency", latency_ms=100, jitter_ms=0)
    assert sorted(target["links"]) == sorted(CROSS_LINKS)


async def test_a_nats_refused_keeps_intents_pending_until_it_is_back(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    await nemesis.start(fault("outage", target="nats", mode="refuse"), "f3")

    answers = [await post(sut, "agent-1", value=i) for i in range(3)]
    assert [(code, body["outcome"]) for code, body in answers] == [(202, "pending-commit")] * 3

    await nemesis.stop("f3")
    await wait_committed(sut, "agent-1", [body["cid"] for _, body in answers])
    target = assert_paired(events, "f3", "outage", node="nats", mode="refuse")
    assert sorted(target["links"]) == ["orchestrator>nats", "projector>nats"]


async def test_a_killed_nats_is_started_again_and_the_pending_intents_commit(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    await nemesis.start(fault("outage", target="nats", mode="kill"), "f4")

    await await_until(lambda: exited(sut, "nats"), "the engine to report nats exited", timeout=10)
    code, body = await post(sut, "agent-2")
    assert (code, body["outcome"]) == (202, "pending-commit")

    await nemesis.stop("f4")
    assert await status(sut, "nats") == "running"
    await wait_committed(sut, "agent-2", [body["cid"]])
    assert_paired(events, "f4", "outage", node="nats", mode="kill")


async def test_a_crashed_agent_is_down_during_and_answers_after(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    await nemesis.start(fault("crash", target="agent-3"), "f5")

    # Its processes are gone; the engine reports it exited once it has torn the container down.
    await await_until(lambda: exited(sut, "agent-3"), "the engine to report agent-3 exited", timeout=10)
    # Two of three agents are still a quorum: decided, whether or not the commit went through at once.
    assert await outcome(sut, "agent-1") in ("committed", "pending-commit")

    await nemesis.stop("f5")
    assert await status(sut, "agent-3") == "running"
    assert await healthz(sut, "agent-3") == 200
    assert_paired(events, "f5", "crash", node="agent-3")


async def test_a_paused_projector_is_frozen_during_and_resumed_after(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    """The nemesis freezes the container's cgroup itself (the engine's pause took 14 to 29 ms, and far more
    under load), so the engine still calls it running: the kernel's word and a silent /healthz say it is
    frozen."""
    await nemesis.start(fault("pause", target="projector"), "f6")

    assert await asyncio.to_thread(frozen, sut, "projector")
    with pytest.raises(httpx.TimeoutException):
        url = await asyncio.to_thread(sut.http_url, "projector")
        async with httpx.AsyncClient(timeout=1) as http:
            await http.get(f"{url}/healthz")
    start = next(e for e in events if e["fault_id"] == "f6")
    assert start["evidence"] == {"container": "projector", "state": "paused", "seen": "cgroup freezer"}

    await nemesis.stop("f6")
    assert not await asyncio.to_thread(frozen, sut, "projector")
    assert await status(sut, "projector") == "running"
    assert await healthz(sut, "projector") == 200
    assert_paired(events, "f6", "pause", node="projector")


async def test_a_paused_agent_can_be_crashed_and_both_heal(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    """A frozen process dies of SIGKILL only once thawed under cgroup v1: the nemesis thaws what it froze
    right after its signal (a frozen wait of 30 s otherwise); the crash's stop starts it, the pause's stop
    finds nothing left to resume."""
    await nemesis.start(fault("pause", target="agent-3"), "p1")
    await nemesis.start(fault("crash", target="agent-3"), "c1")
    crash = next(e for e in events if e["fault_id"] == "c1" and e["f"] == "start")
    assert crash["evidence"] == {"container": "agent-3", "state": "exited", "seen": "process exit"}, crash
    await nemesis.stop("c1")
    await nemesis.stop("p1")
    assert await status(sut, "agent-3") == "running"
    assert await healthz(sut, "agent-3") == 200


async def proxies_state(sut: System) -> dict[str, tuple[bool, list[str]]]:
    async with Toxiproxy(await asyncio.to_thread(lambda: sut.toxiproxy_url)) as tp:
        return {
            name: (p.enabled, sorted(t.name for t in p.toxics)) for name, p in (await tp.proxies()).items()
        }


async def test_overlapping_faults_on_one_link_heal_independently(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    await nemesis.start(fault("partition", groups=[["agent-1"], ["agent-2", "agent-3"]]), "f7")
    await nemesis.start(fault("isolate", target="agent-1"), "f8")
    await nemesis.start(fault("latency", links="agent-2>agent-3", latency="50ms"), "f9")
    await nemesis.start(fault("slicer", links="agent-2>agent-3", average_size=64), "f10")

    await nemesis.stop("f7")
    state = await proxies_state(sut)
    assert state["agent-1>agent-2"][0] is False, "still disabled: the isolation holds it"
    await nemesis.stop("f9")
    assert (await proxies_state(sut))["agent-2>agent-3"] == (True, ["f10-downstream", "f10-upstream"])

    await nemesis.stop("f8")
    await nemesis.stop("f10")
    assert all(s == (True, []) for s in (await proxies_state(sut)).values())
    for fid, kind in [("f7", "partition"), ("f8", "isolate"), ("f9", "latency"), ("f10", "slicer")]:
        assert_paired(events, fid, kind)


async def test_heal_all_restores_everything_active_and_more(
    sut: System, nemesis: Nemesis, events: list
) -> None:
    started = [
        ("h1", fault("partition", groups=[["agent-1", "agent-2"], ["agent-3"]], mode="blackhole")),
        ("h2", fault("outage", target="surrealdb", mode="refuse")),
        ("h3", fault("bandwidth", links="agents>orchestrator", rate_kbps=64)),
        ("h4", fault("crash", target="agent-2")),
        ("h5", fault("pause", target="orchestrator")),
    ]
    for fault_id, f in started:
        await nemesis.start(f, fault_id)
    # Damage done behind the nemesis's back is healed by the safety net as well.
    async with Toxiproxy(await asyncio.to_thread(lambda: sut.toxiproxy_url)) as tp:
        await tp.add_toxic("projector>nats", Toxic("stray", "latency", attributes={"latency": 10}))
    await asyncio.to_thread(lambda: sut.run.raw("projector").pause())
    assert nemesis.active == [fid for fid, _ in started]

    await nemesis.heal_all()

    assert nemesis.active == []
    assert {name: s for name, s in (await proxies_state(sut)).items() if s != (True, [])} == {}
    assert {node: await status(sut, node) for node in sut.nodes} == dict.fromkeys(sut.nodes, "running")
    assert [node for node in sut.nodes if await asyncio.to_thread(frozen, sut, node)] == []
    for fault_id, f in started:
        assert_paired(events, fault_id, f.fault)
    await wait_outcome(sut, "agent-1", "committed")


# Fault timing (issue 17): a start line is written once the fault took effect, every part of it.


def toxiproxy_now(sut: System) -> dict[str, tuple[bool, list[str]]]:
    """Toxiproxy's proxies as it reports them, synchronously: from inside `record`, at the very moment."""
    data = httpx.get(f"{sut.toxiproxy_url}/proxies", timeout=5).json()
    return {name: (p["enabled"], sorted(t["name"] for t in p["toxics"] or [])) for name, p in data.items()}


async def test_a_link_fault_is_recorded_once_every_link_and_stream_is_cut(sut: System) -> None:
    seen: dict[str, dict[str, tuple[bool, list[str]]]] = {}
    nemesis = Nemesis(sut, lambda e: seen.setdefault(f"{e['f']} {e['fault_id']}", toxiproxy_now(sut)))
    try:
        await nemesis.start(fault("isolate", target="agent-1"), "t1")
        await nemesis.start(fault("latency", links="agents>orchestrator", latency="30ms"), "t2")
        await nemesis.stop("t1")
        await nemesis.stop("t2")
    finally:
        await nemesis.heal_all()
    isolated = {name for name, ln in sut.links.items() if "agent-1" in (ln.source, ln.target)}
    assert len(isolated) >= 4 and all(not seen["start t1"][n][0] for n in isolated), seen["start t1"]
    slowed = [f"{a}>orchestrator" for a in AGENTS]
    assert {n: seen["start t2"][n][1] for n in slowed} == dict.fromkeys(
        slowed, ["t2-downstream", "t2-upstream"]
    )
    assert all(s == (True, []) for s in seen["stop t2"].values()), "each stop undid its own parts"


async def test_a_partly_failed_start_undoes_exactly_its_own_parts(sut: System, nemesis: Nemesis) -> None:
    # A toxic of the same name already on one link: that part of the start fails, the others succeed.
    async with Toxiproxy(await asyncio.to_thread(lambda: sut.toxiproxy_url)) as tp:
        await tp.add_toxic(
            "agent-2>orchestrator", Toxic("t3-upstream", "latency", "upstream", 1.0, {"latency": 1})
        )
    with pytest.raises(NemesisError, match="t3"):
        await nemesis.start(fault("latency", links="agents>orchestrator", latency="30ms"), "t3")
    state = await proxies_state(sut)
    assert {n: s for n, s in state.items() if s != (True, [])} == {
        "agent-2>orchestrator": (True, ["t3-upstream"])
    }
    assert nemesis.active == []


async def test_a_crash_is_recorded_once_the_container_is_down(sut: System) -> None:
    url = await asyncio.to_thread(sut.http_url, "agent-3")

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    seen: dict[str, Any] = {}
    nemesis = Nemesis(sut, lambda e: seen.setdefault(f"{e['f']} {e['fault_id']}", (e, answers())))
    try:
        await nemesis.start(fault("crash", target="agent-3"), "t4")
        # The engine's own state follows once it has torn the container down.
        await await_until(lambda: exited(sut, "agent-3"), "the engine to report agent-3 exited", timeout=10)
        await nemesis.stop("t4")
    finally:
        await nemesis.heal_all()
    start, answered = seen["start t4"]
    assert answered is False, "at its start line the agent answers no more"
    assert start["evidence"]["container"] == "agent-3" and start["evidence"]["state"] == "exited"
    assert await healthz(sut, "agent-3") == 200
