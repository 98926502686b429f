"""A NATS cluster (topology.nats.nodes, replicas): the scenario model, the shape's nodes and links, the
plan's proxies and ports, each node's config file, and what /jsz says about the cluster's readiness."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from harness.nemesis.outage import outage_links
from harness.runner import system_config
from harness.scenario import Scenario
from harness.shape import data_plane_links, node_names, select_links
from harness.topology.nats_cluster import cluster_problem, meta_leader, stream_view
from harness.topology.plan import SystemConfig, nats_routes, plan_links
from harness.topology.services import nats_config


def scenario(**fields: Any) -> Scenario:
    return Scenario.model_validate({"name": "s", "load": {"rate": 5, "duration": "60s"}, **fields})


# The model


@pytest.mark.parametrize(
    ("nats", "nodes", "replicas"),
    [({}, 1, 1), ({"nodes": 3}, 3, 3), ({"nodes": 5}, 5, 3), ({"nodes": 5, "replicas": 5}, 5, 5),
     ({"nodes": 3, "replicas": 1}, 3, 1)],
)  # fmt: skip
def test_nodes_and_replicas_default_to_one_server_and_three_copies_in_a_cluster(
    nats: dict, nodes: int, replicas: int
) -> None:
    settings = scenario(topology={"nats": nats}).topology.nats
    assert (settings.nodes, settings.replicas, settings.stream_replicas) == (nodes, replicas, replicas)


@pytest.mark.parametrize(
    ("nats", "words"),
    [
        ({"nodes": 2}, "got 2"),
        ({"nodes": True}, "got True"),
        ({"nodes": 3.0}, "got 3.0"),
        ({"nodes": 3, "replicas": 4}, "replicas 4 is more than the 3 NATS nodes"),
        ({"replicas": 3}, "replicas 3 is more than the 1 NATS nodes"),
        ({"nodes": 3, "replicas": True}, "integer"),
        ({"nodes": 3, "replicas": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_nodes_or_replicas_are_refused(nats: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        scenario(topology={"nats": nats})


def test_faults_name_the_cluster_nodes_and_its_routes() -> None:
    s = scenario(
        topology={"nats": {"nodes": 3}},
        faults=[
            {"at": 1, "for": 2, "fault": "crash", "target": "nats-2"},
            {"at": 1, "for": 2, "fault": "partition", "groups": [["nats-1"], ["nats-2", "nats-3"]]},
            {"at": 1, "for": 2, "fault": "latency", "links": ["nats-1>nats-2", "*>nats"], "latency": 0.1},
            {"at": 1, "for": 2, "fault": "outage", "target": "nats", "mode": "blackhole"},
        ],
    )
    assert [f.fault for f in s.faults] == ["crash", "partition", "latency", "outage"]


def test_faultfs_for_nats_means_every_node_of_the_cluster() -> None:
    topo = scenario(topology={"nats": {"nodes": 3}, "disk": {"nats": "faultfs"}}).topology
    assert topo.faultfs_nodes == ("nats-1", "nats-2", "nats-3")
    s = scenario(
        topology={"nats": {"nodes": 3}, "disk": {"nats": "faultfs"}},
        faults=[{"at": 1, "fault": "power-loss", "targets": ["nats-1", "nats-3"]}],
    )
    assert s.faults[0].targets == ["nats-1", "nats-3"]  # type: ignore[attr-defined]


def test_the_runner_gives_the_system_its_nodes_and_replicas() -> None:
    cfg = system_config(scenario(topology={"nats": {"nodes": 5, "replicas": 3}}))
    assert (cfg.nats_nodes, cfg.stream_replicas, cfg.nats_names()) == (
        5,
        3,
        ["nats-1", "nats-2", "nats-3", "nats-4", "nats-5"],
    )
    assert (system_config(scenario()).nats_nodes, system_config(scenario()).stream_replicas) == (1, 1)


# The shape: nodes and links


def test_a_single_server_keeps_its_name_and_links() -> None:
    assert node_names(3) == [
        "agent-1",
        "agent-2",
        "agent-3",
        "orchestrator",
        "projector",
        "nats",
        "surrealdb",
    ]
    assert [ln for ln in data_plane_links(2) if "nats" in "".join(ln)] == [
        ("orchestrator", "nats"),
        ("projector", "nats"),
    ]


def test_a_cluster_has_a_link_from_each_client_to_each_node_and_a_route_per_ordered_pair() -> None:
    links = data_plane_links(2, 3)
    servers = ["nats-1", "nats-2", "nats-3"]
    assert [b for a, b in links if a == "orchestrator"] == servers
    assert [b for a, b in links if a == "projector"] == [*servers, "surrealdb"]
    routes = [(a, b) for a, b in links if a.startswith("nats-")]
    assert routes == [(a, b) for a in servers for b in servers if a != b]
    assert len(set(links)) == len(links)
    assert node_names(1, 3)[-4:] == ["nats-1", "nats-2", "nats-3", "surrealdb"]


def test_nats_as_a_selector_is_every_node_of_the_cluster() -> None:
    assert select_links("orchestrator>nats", 2, 3) == [("orchestrator", f"nats-{i}") for i in (1, 2, 3)]
    assert select_links("nats-2>*", 2, 3) == [("nats-2", "nats-1"), ("nats-2", "nats-3")]
    assert len(select_links("*>nats", 2, 3)) == 3 + 3 + 6


# The plan: every link its own proxy on its own port


@pytest.mark.parametrize("nodes", [1, 3, 5])
def test_every_link_has_its_own_listen_port(nodes: int) -> None:
    links = plan_links(SystemConfig(agents=7, nats_nodes=nodes))
    ports = [ln.port for ln in links.values()]
    assert len(set(ports)) == len(ports)
    assert all(1024 < p < 65536 and p != 8474 for p in ports)  # never Toxiproxy's own API port


def test_a_single_server_keeps_its_ports() -> None:
    links = plan_links(SystemConfig(agents=3))
    assert (links["orchestrator>nats"].port, links["projector>nats"].port) == (23001, 23002)
    assert links["orchestrator>nats"].upstream == "nats:4222"


def test_clients_reach_a_node_on_its_client_port_and_routes_on_its_route_port() -> None:
    links = plan_links(SystemConfig(agents=3, nats_nodes=3))
    assert links["orchestrator>nats-2"].upstream == "nats-2:4222"
    assert links["projector>nats-3"].upstream == "nats-3:4222"
    assert links["nats-1>nats-2"].upstream == "nats-2:6222"
    assert links["nats-3>nats-1"].upstream == "nats-1:6222"
    assert "orchestrator>nats" not in links


def test_each_node_routes_to_every_other_through_its_own_proxies() -> None:
    cfg = SystemConfig(agents=3, nats_nodes=3)
    assert nats_routes(cfg, plan_links(cfg)) == {
        "nats-1": ["nats-route://toxiproxy:23112", "nats-route://toxiproxy:23113"],
        "nats-2": ["nats-route://toxiproxy:23121", "nats-route://toxiproxy:23123"],
        "nats-3": ["nats-route://toxiproxy:23131", "nats-route://toxiproxy:23132"],
    }
    assert nats_routes(SystemConfig(), plan_links(SystemConfig())) is None


def test_an_outage_of_a_cluster_cuts_every_clients_link_to_every_node_and_keeps_the_routes() -> None:
    links = plan_links(SystemConfig(agents=2, nats_nodes=3))
    assert outage_links(links, "nats") == [
        *(f"orchestrator>nats-{i}" for i in (1, 2, 3)),
        *(f"projector>nats-{i}" for i in (1, 2, 3)),
    ]
    single = plan_links(SystemConfig(agents=2))
    assert outage_links(single, "nats") == ["orchestrator>nats", "projector>nats"]
    assert outage_links(single, "surrealdb") == ["projector>surrealdb"]


# Each node's config file


def test_a_single_server_config_is_unchanged() -> None:
    assert (
        nats_config("always")
        == "# written by solar-chaos for one run\njetstream {\n  sync_interval: always\n}\n"
    )


def test_a_cluster_node_config_names_it_and_routes_through_the_proxies() -> None:
    text = nats_config(None, "nats-1", ["nats-route://toxiproxy:23112", "nats-route://toxiproxy:23113"])
    assert text == (
        "# written by solar-chaos for one run\n"
        "server_name: nats-1\n"
        "cluster {\n"
        "  name: solar-chaos\n"
        "  listen: 0.0.0.0:6222\n"
        "  no_advertise: true\n"
        "  routes: [\n"
        "    nats-route://toxiproxy:23112\n"
        "    nats-route://toxiproxy:23113\n"
        "  ]\n"
        "}\n"
    )
    assert "jetstream {\n  sync_interval: 2000ms\n}" in nats_config("2000ms", "nats-2", [])


# What /jsz says


def jsz(meta: str | None, leader: str | None, replicas: dict[str, bool] | None) -> dict:
    detail: dict[str, Any] = {"name": "SENTIMENT", "state": {"messages": 4}}
    if replicas is not None:
        detail["cluster"] = {
            "leader": leader,
            "replicas": [{"name": n, "current": c} for n, c in replicas.items()],
        }
    return {
        "meta_cluster": {"leader": meta} if meta else {},
        "account_details": [{"stream_detail": [detail] if leader or replicas is None else []}],
    }


def test_a_cluster_is_ready_with_a_meta_leader_and_its_replicas_current() -> None:
    ok = jsz("nats-1", "nats-2", {"nats-1": True, "nats-3": True})
    assert cluster_problem(ok, "SENTIMENT", 3) is None
    assert meta_leader(ok) == "nats-1"
    view = stream_view(ok, "SENTIMENT")
    assert view is not None and view.leader == "nats-2" and view.detail["state"]["messages"] == 4


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (jsz(None, "nats-2", {"nats-1": True, "nats-3": True}), "no JetStream meta leader"),
        (jsz("nats-1", None, {}), "no stream SENTIMENT"),
        (jsz("nats-1", "nats-2", {"nats-1": True}), "stream SENTIMENT has 2 replicas, not 3"),
        (
            jsz("nats-1", "nats-2", {"nats-1": True, "nats-3": False}),
            "stream SENTIMENT's replicas nats-3 not current",
        ),
    ],
)
def test_what_keeps_a_cluster_from_being_ready_is_named(answer: dict, problem: str) -> None:
    assert cluster_problem(answer, "SENTIMENT", 3) == problem
