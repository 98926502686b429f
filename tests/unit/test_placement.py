"""Placement (harness/topology/placement.py): which engine runs which node, as topology.hosts says."""

from __future__ import annotations

import pytest

from harness.errors import TopologyError
from harness.shape import load_names, node_names
from harness.topology.placement import LOCAL, Host, engine_problem, place
from harness.topology.plan import SystemConfig


def test_no_hosts_puts_every_node_and_toxiproxy_on_the_local_engine() -> None:
    p = place([], node_names(3))
    assert p.engines == (LOCAL,)
    assert not p.several
    assert dict(p.where) == dict.fromkeys([*node_names(3), "toxiproxy"], LOCAL)
    assert p.nodes_on(LOCAL) == sorted([*node_names(3), "toxiproxy"])


def test_agents_are_dealt_round_robin_over_the_hosts_naming_them() -> None:
    hosts = [
        Host("standin-1", ("nats", "surrealdb")),
        Host("standin-2", ("agents",)),
        Host("standin-3", ("agents",)),
    ]
    p = place(hosts, node_names(5))
    assert p.engines == ("standin-1", "standin-2", "standin-3")
    assert p.several
    assert p.nodes_on("standin-2") == ["agent-1", "agent-3", "agent-5"]
    assert p.nodes_on("standin-3") == ["agent-2", "agent-4"]
    # Home, the first engine, runs what no host names: toxiproxy, orchestrator, projector.
    assert p.nodes_on("standin-1") == ["nats", "orchestrator", "projector", "surrealdb", "toxiproxy"]


def test_a_node_named_by_name_wins_over_its_role_and_the_rest_are_dealt() -> None:
    hosts = [Host("local"), Host("standin-2", ("agents",)), Host("standin-3", ("agents", "agent-3"))]
    p = place(hosts, node_names(5))
    assert p.engine_of("agent-3") == "standin-3"
    # agent-1, 2, 4, 5 dealt: 1 and 4 to standin-2, 2 and 5 to standin-3
    assert p.nodes_on("standin-2") == ["agent-1", "agent-4"]
    assert p.nodes_on("standin-3") == ["agent-2", "agent-3", "agent-5"]
    assert p.nodes_on("local") == ["nats", "orchestrator", "projector", "surrealdb", "toxiproxy"]


def test_a_nats_cluster_is_spread_by_role_and_toxiproxy_may_move() -> None:
    hosts = [
        Host("standin-1", ("surrealdb",)),
        Host("standin-2", ("nats", "toxiproxy")),
        Host("standin-3", ("nats",)),
    ]
    p = place(hosts, node_names(3, nats=3))
    assert p.nodes_on("standin-2") == ["nats-1", "nats-3", "toxiproxy"]
    assert p.nodes_on("standin-3") == ["nats-2"]
    assert p.engine_of("agent-1") == "standin-1"


def test_where_lists_every_node_once_sorted() -> None:
    p = place([Host("standin-1"), Host("standin-2", ("agents",))], node_names(2, analytics=True))
    names = [n for n, _ in p.where]
    assert names == sorted(names) == sorted([*node_names(2, analytics=True), "toxiproxy"])
    with pytest.raises(KeyError, match="agent-9"):
        p.engine_of("agent-9")


def test_a_node_named_on_two_hosts_is_refused_naming_both() -> None:
    with pytest.raises(TopologyError, match=r"hosts\[1\] \(standin-2\): surrealdb is named by hosts\[0\]"):
        place([Host("standin-1", ("surrealdb",)), Host("standin-2", ("surrealdb",))], node_names(3))


def test_the_same_engine_on_two_hosts_is_refused() -> None:
    with pytest.raises(TopologyError, match=r"hosts\[1\]\.engine: standin-1 is hosts\[0\]'s engine too"):
        place([Host("standin-1", ("agents",)), Host("standin-1", ("nats",))], node_names(3))


def test_an_unknown_node_is_refused_naming_the_nodes_that_exist() -> None:
    with pytest.raises(
        TopologyError, match=r"hosts\[0\] \(local\): 'agent-4' is no node.*agent-3.*toxiproxy"
    ):
        place([Host("local", ("agent-4",))], node_names(3))
    with pytest.raises(TopologyError, match="'nats-1' is no node"):
        place([Host("local", ("nats-1",))], node_names(3))  # a single server is `nats`


def test_a_bad_engine_is_refused_naming_the_host() -> None:
    with pytest.raises(TopologyError, match=r"hosts\[1\]\.engine: 'standin-0'"):
        place([Host("local"), Host("standin-0")], node_names(1))


@pytest.mark.parametrize(
    "engine",
    [
        "local",
        "standin-1",
        "standin-9",
        "ssh://h2",
        "ssh://user@h2",
        "ssh://deploy@h2.example.org:2222",
        "ssh://root@10.0.0.7",
        "tcp://h3:2376",
        "tcp://[fd00::3]:2375",
        "unix:///var/run/docker.sock",
    ],
)
def test_engine_forms_allowed(engine: str) -> None:
    assert engine_problem(engine) is None


@pytest.mark.parametrize(
    ("engine", "said"),
    [
        ("standin-0", "standin-1..standin-9"),
        ("standin-10", "standin-1..standin-9"),
        ("tcp://h3", "needs host:port"),
        ("tcp://h3:0", "port 0 is not 1..65535"),
        ("ssh://h2:70000", "port 70000"),
        ("http://h3:2375", "no engine's address"),
        ("ssh://", "no engine's address"),
        ("ssh://a b", "no engine's address"),
        ("LOCAL", "no engine's address"),
        ("", "no engine's address"),
        (3, "not text"),
        ("ssh://" + "a" * 400, "too long"),
    ],
)
def test_engine_forms_refused(engine: object, said: str) -> None:
    problem = engine_problem(engine)
    assert problem is not None and said in problem


def test_system_config_places_its_own_nodes_and_stays_hashable() -> None:
    cfg = SystemConfig(agents=2, nats_nodes=3, hosts=(Host("standin-1"), Host("standin-2", ("nats",))))
    p = cfg.placement()
    assert p.nodes_on("standin-2") == ["nats-1", "nats-2", "nats-3"]
    assert p.engine_of("toxiproxy") == "standin-1"
    assert hash(cfg) == hash(SystemConfig(agents=2, nats_nodes=3, hosts=cfg.hosts))
    assert SystemConfig().placement().engines == (LOCAL,)


def test_a_node_that_needs_a_folder_of_this_machine_must_run_on_it() -> None:
    away = (Host("standin-1", ("toxiproxy",)), Host("standin-2", ("nats", "agents")))
    assert SystemConfig(faultfs=("nats",)).away_from_folders() is None  # no hosts: all here
    why = SystemConfig(faultfs=("nats",), hosts=away).away_from_folders()
    assert why is not None and "nats (its data on faultfs (topology.disk)) on standin-2" in why
    why = SystemConfig(agents=2, clock=True, hosts=away).away_from_folders()
    assert why is not None and "agent-1 (its clock under a clock fault) on standin-2" in why
    assert "agent-2" in why
    here = (Host("local", ("nats",)), Host("tcp://h2:2376", ("agents",)))
    assert SystemConfig(faultfs=("nats",), hosts=here).away_from_folders() is None
    assert SystemConfig(hosts=away).away_from_folders() is None  # nothing needs a folder


def test_load_workers_are_dealt_like_agents_where_a_host_names_the_role() -> None:
    hosts = [Host("local"), Host("standin-1", ("agents", "load")), Host("standin-2", ("load",))]
    p = place(hosts, [*node_names(2), *load_names(3)])
    assert p.nodes_on("standin-1") == ["agent-1", "agent-2", "load-1", "load-3"]
    assert p.nodes_on("standin-2") == ["load-2"]
    assert "load-1" not in p.nodes_on("local")


def test_a_load_worker_named_alone_places_every_worker_and_the_rest_go_home() -> None:
    p = place([Host("standin-1"), Host("standin-2", ("load-2",))], [*node_names(2), *load_names(3)])
    assert p.engine_of("load-2") == "standin-2"
    assert p.engine_of("load-1") == p.engine_of("load-3") == "standin-1"


@pytest.mark.parametrize(
    "hosts", [[], [Host("standin-1"), Host("standin-2", ("agents",))]], ids=["no hosts", "no host names load"]
)
def test_load_workers_no_host_names_stay_out_of_the_placement(hosts: list[Host]) -> None:
    """They stay subprocesses of the harness: harness/load worker_engines finds none of them."""
    p = place(hosts, [*node_names(2), *load_names(2)])
    assert not [n for n, _ in p.where if n.startswith("load")]
    with pytest.raises(KeyError):
        p.engine_of("load-1")


def test_the_system_config_places_its_load_workers() -> None:
    cfg = SystemConfig(agents=2, load_workers=2, hosts=(Host("local"), Host("standin-1", ("load",))))
    assert cfg.placement().nodes_on("standin-1") == ["load-1", "load-2"]
    assert cfg.placement().several
    assert "load-1" not in dict(SystemConfig(agents=2, load_workers=2).placement().where)
    # named, but this run has fewer workers (the same hosts file serves any --load-workers): unused,
    # and then no worker is placed: they stay local
    fewer = SystemConfig(agents=2, load_workers=2, hosts=(Host("local"), Host("standin-1", ("load-3",))))
    assert not [n for n, _ in fewer.placement().where if n.startswith("load")]
