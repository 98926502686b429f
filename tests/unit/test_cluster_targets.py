"""Faults that follow a NATS cluster (nats-leader, nats-minority, nats-majority): which nodes each role is,
how the leaders are read from the nodes' /jsz, which faults may name a role, and the random nemesis
drawing over a cluster."""

from __future__ import annotations

from typing import Any

import pytest

from harness.nemesis.cluster import leaders
from harness.observe.nats import cluster_fields
from harness.scenario import Scenario
from harness.schedule import plan
from harness.shape import cluster_members


def scenario(**fields: Any) -> Scenario:
    return Scenario.model_validate({"name": "s", "load": {"rate": 5, "duration": "30s"}, **fields})


THREE = ["nats-1", "nats-2", "nats-3"]
FIVE = [f"nats-{i}" for i in range(1, 6)]


@pytest.mark.parametrize(
    ("name", "leader", "nodes", "members"),
    [
        ("nats-leader", "nats-2", THREE, ["nats-2"]),
        ("nats-minority", "nats-1", THREE, ["nats-2"]),
        ("nats-minority", "nats-2", THREE, ["nats-1"]),
        ("nats-majority", "nats-2", THREE, ["nats-2", "nats-3"]),
        ("nats-minority", "nats-3", FIVE, ["nats-1", "nats-2"]),
        ("nats-majority", "nats-3", FIVE, ["nats-3", "nats-4", "nats-5"]),
    ],
)
def test_each_role_is_the_leader_a_minority_of_followers_or_the_rest(
    name: str, leader: str, nodes: list[str], members: list[str]
) -> None:
    assert cluster_members(name, leader, nodes) == members


@pytest.mark.parametrize("leader", THREE)
def test_the_minority_never_holds_the_leader_and_the_majority_is_its_complement(leader: str) -> None:
    minority = cluster_members("nats-minority", leader, THREE)
    majority = cluster_members("nats-majority", leader, THREE)
    assert leader not in minority and leader in majority
    assert sorted(minority + majority) == THREE and len(majority) > len(THREE) / 2


def _jsz(node: str, leader: str | None, meta: str | None) -> dict[str, Any]:
    detail = {"name": "SENTIMENT", "cluster": {"leader": leader, "replicas": []}}
    return {"meta_cluster": {"leader": meta}, "account_details": [{"stream_detail": [detail]}]}


def test_the_stream_leader_is_the_node_that_says_it_leads() -> None:
    # nats-3 still names nats-1, which it has not yet heard is gone; nats-2 leads now.
    answers = {
        "nats-1": None,
        "nats-2": _jsz("nats-2", "nats-2", "nats-2"),
        "nats-3": _jsz("nats-3", "nats-1", "nats-2"),
    }
    assert leaders(answers) == ("nats-2", "nats-2")


def test_no_node_leading_is_no_leader() -> None:
    answers = {"nats-1": _jsz("nats-1", "nats-2", "nats-2"), "nats-2": None, "nats-3": None}
    assert leaders(answers) == (None, "nats-2")


def test_crash_pause_isolate_and_power_loss_may_name_a_role() -> None:
    s = scenario(
        topology={"nats": {"nodes": 3}, "disk": {"nats": "faultfs"}},
        faults=[
            {"at": 1, "for": 2, "fault": "crash", "target": "nats-leader"},
            {"at": 4, "for": 2, "fault": "pause", "target": "nats-majority"},
            {"at": 7, "for": 2, "fault": "isolate", "target": "nats-minority"},
            {"at": 10, "fault": "power-loss", "targets": ["nats-leader"]},
        ],
    )
    assert [f.fault for f in s.faults] == ["crash", "pause", "isolate", "power-loss"]


def test_a_random_block_over_a_cluster_draws_roles_only_for_the_kinds_that_follow_it() -> None:
    s = scenario(
        seed=7,
        topology={"nats": {"nodes": 3}},
        random={
            "interval": "3s",
            "duration": "1s",
            "faults": ["crash", "pause", "isolate", "latency", "partition"],
            "targets": ["nats-leader", "nats-minority", "nats-1", "nats-2", "nats-3"],
        },
    )
    steps = [step for step in plan(s, 7) if step.action == "start"]
    assert len(steps) == 10
    named = {(st.fault.fault, n) for st in steps for _p, n, kind in st.fault.references() if kind == "node"}
    roles = {(kind, n) for kind, n in named if n.startswith("nats-") and not n[-1].isdigit()}
    assert roles and {kind for kind, _ in roles} <= {"crash", "pause", "isolate"}
    assert plan(s, 7) == plan(s, 7)  # seeded: the same plan again


def test_a_random_block_over_a_cluster_defaults_to_its_nodes() -> None:
    s = scenario(
        topology={"nats": {"nodes": 3}}, random={"interval": "5s", "duration": "1s", "faults": ["crash"]}
    )
    targets = {st.fault.target for st in plan(s, 1) if st.action == "start"}
    assert targets and all(t != "nats" for t in targets)


def test_a_sample_says_the_leaders_and_only_the_leader_says_which_replicas_lag() -> None:
    detail = {
        "name": "SENTIMENT",
        "cluster": {
            "leader": "nats-2",
            "replicas": [{"name": "nats-1", "current": True}, {"name": "nats-3"}],
        },
    }
    jsz = {"meta_cluster": {"leader": "nats-1"}, "account_details": [{"stream_detail": [detail]}]}
    assert cluster_fields(jsz, "nats-2") == {
        "meta_leader": "nats-1",
        "stream_leader": "nats-2",
        "replicas_current": ["nats-1"],
        "replicas_lagging": ["nats-3"],
    }
    # a follower reports its peers not current all the time: its word on them is left out
    assert cluster_fields(jsz, "nats-1") == {"meta_leader": "nats-1", "stream_leader": "nats-2"}
