"""A system placed over three engines (issue 32, `topology.hosts`): stand-in engines on this machine joined
in a Swarm, each node on the engine its placement names, each node's network an overlay across them with
Toxiproxy on every one. Peers still reach each other only through Toxiproxy, intents land once in stream
and store, a partition between two engines' agents holds and heals, a NATS cluster spans the engines, and
nothing is left afterwards. Prints the bring-up figures docs/scale.md records."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from harness import engine
from harness.topology.placement import Host
from harness.topology.plan import SystemConfig
from harness.topology.system import System
from harness.waiting import wait_until
from tests.integration.reach import ip_of, round_trips_via, set_pair, tcp_from, who_answers

# About 2 to 3 minutes of stand-in engines: past CI's budget, so CI deselects it and nightly-scenarios.yml
# runs it (`make test` runs it for a user). docs/operations.md, "CI".
pytestmark = [pytest.mark.docker, pytest.mark.nightly]

PLUMBING = {"intent_timeout_ms": 1000, "commit_timeout_ms": 2000}  # as test_topology: plumbing, not latency
SERVICES = ("toxiproxy", "nats", "surrealdb", "orchestrator", "projector")
HOSTS = (Host("standin-1", SERVICES), Host("standin-2", ("agents",)), Host("standin-3", ("agents",)))


@pytest.fixture(scope="module")
def sut(images):
    t0 = time.monotonic()
    with System(images, SystemConfig(agents=3, hosts=HOSTS, **PLUMBING)) as s:
        print(f"\nfigure: 3 agents on 3 stand-in engines up in {time.monotonic() - t0:.1f} s")
        yield s
    assert not engine.list_runs(s.run_id), "the engines, containers or networks of the run were left behind"


def where(sut: System, node: str) -> str:
    """The engine whose API knows the node's container."""
    return next(
        t.name
        for t in sut.run.fleet.targets.values()
        if t.client.containers.list(all=True, filters={"name": f"sc-{sut.run_id}-{node}"})
    )


def test_each_node_runs_on_the_engine_its_placement_names(sut: System) -> None:
    assert {n: where(sut, n) for n in (*SERVICES, "agent-1", "agent-2", "agent-3")} == {
        **dict.fromkeys(SERVICES, "standin-1"),
        "agent-1": "standin-2",
        "agent-2": "standin-3",
        "agent-3": "standin-2",
    }
    assert engine.client().info()["Swarm"]["LocalNodeState"] == "inactive"  # this machine's engine stays out
    drivers = {n: sut.run.raw(n).attrs["HostConfig"]["NetworkMode"] for n in ("agent-1", "agent-2")}
    for node, net in drivers.items():
        overlay = sut.run.fleet.target(node).client.networks.get(net)
        assert overlay.attrs["Driver"] == "overlay", f"{node}'s network is {overlay.attrs['Driver']}"


def test_peers_on_different_engines_reach_each_other_only_through_toxiproxy(sut: System) -> None:
    """Over overlays a container has a default route out (each engine's docker_gwbridge), so a connection to
    a peer's own address may be taken by whatever the engine's host routes it to: what must not happen is
    that the peer answers it."""
    assert tcp_from(sut, "agent-1", "toxiproxy", sut.links["agent-1>agent-2"].port) == "connected"
    assert who_answers(sut, "agent-1", "agent-1").startswith("reached"), "the probe cannot tell a node answer"
    for src, dst in [
        ("agent-1", "agent-2"),  # standin-2 to standin-3
        ("agent-1", "agent-3"),  # both on standin-2, each on its own overlay
        ("agent-2", "orchestrator"),  # standin-3 to standin-1
        ("orchestrator", "projector"),  # both on standin-1
    ]:
        got = who_answers(sut, src, dst)
        assert not got.startswith("reached"), f"{src} reached {dst} directly at {ip_of(sut, dst)}: {got}"


def post(sut: System, agent: str, i: int) -> dict:
    return httpx.post(f"{sut.http_url(agent)}/intents", json={"key": f"k{i}", "value": i}, timeout=5).json()


def test_intents_from_every_engine_commit(sut: System) -> None:
    answers = [post(sut, f"agent-{i % 3 + 1}", i) for i in range(6)]
    assert [a["outcome"] for a in answers] == ["committed"] * 6, answers


def test_a_partition_between_two_engines_agents_holds_and_heals(sut: System) -> None:
    asyncio.run(set_pair(sut, "agent-1", "agent-2", "refuse"))
    asyncio.run(set_pair(sut, "agent-1", "agent-3", "refuse"))
    try:
        outcomes = {post(sut, "agent-1", 100 + i)["outcome"] for i in range(3)}
        assert outcomes == {"aborted"}, f"agent-1 (standin-2) reached a quorum around the cut: {outcomes}"
    finally:
        asyncio.run(set_pair(sut, "agent-1", "agent-2", None))
        asyncio.run(set_pair(sut, "agent-1", "agent-3", None))
    sut.wait_connected("agent-1")
    tries = iter(range(200, 250))
    wait_until(
        lambda: post(sut, "agent-1", next(tries))["outcome"] == "committed", "a commit after the heal", 10
    )


def test_what_a_link_through_toxiproxy_costs_across_engines(sut: System) -> None:
    """docs/scale.md's figures: every data-plane link goes through Toxiproxy on home (standin-1), so a link
    between two agents crosses to home and back even when both run on standin-2."""
    for src, dst, path in [
        ("agent-1", "agent-3", "standin-2 > standin-1 > standin-2"),
        ("agent-1", "agent-2", "standin-2 > standin-1 > standin-3"),
        ("orchestrator", "projector", "standin-1 > standin-1 > standin-1"),
    ]:
        got = round_trips_via(sut, src, dst)
        assert got["n"] == 300, got
        print(f"\nfigure: {src} to {dst} through toxiproxy ({path}): p50 {got['p50_us']:.0f} us, "
              f"p99 {got['p99_us']:.0f} us")  # fmt: skip


def test_a_nats_cluster_spans_three_engines(images) -> None:
    hosts = (
        Host("standin-1", ("toxiproxy", "surrealdb", "orchestrator", "projector", "nats")),
        Host("standin-2", ("nats", "agents")),
        Host("standin-3", ("nats",)),
    )
    cfg = SystemConfig(agents=2, nats_nodes=3, stream_replicas=3, hosts=hosts, **PLUMBING)
    t0 = time.monotonic()
    with System(images, cfg) as sut:
        print(f"\nfigure: a 3-node NATS cluster on 3 stand-in engines up in {time.monotonic() - t0:.1f} s")
        assert [where(sut, n) for n in ("nats-1", "nats-2", "nats-3")] == [
            "standin-1",
            "standin-2",
            "standin-3",
        ]
        routes = httpx.get(f"{sut.nats_monitor_urls['nats-1']}/routez", timeout=2).json()
        assert routes["num_routes"] >= 2, routes
        assert post(sut, "agent-1", 1)["outcome"] == "committed"
    assert not engine.list_runs(sut.run_id)
