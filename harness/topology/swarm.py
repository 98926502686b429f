"""Making engines one Swarm (issue 32): what `docker swarm init` on one engine and `docker swarm join` on the
others do, over the engines' APIs. The stand-in engines of a run are joined with it
(harness/topology/engines.py); a user's hosts by `solar-chaos swarm HOSTS.yaml` (docs/scale.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors

import docker
from harness.errors import TopologyError
from harness.waiting import WaitTimeout, wait_until

SWARM_PORT = 2377  # Docker's: managers listen for joins and the Raft of the Swarm on it


@dataclass(frozen=True)
class Member:
    """An engine to be in the Swarm: its name (as a hosts file writes it), client, and the address the other
    engines reach it at (its advertise address)."""

    name: str
    client: docker.DockerClient
    address: str


def _swarm(m: Member) -> dict[str, Any]:
    return dict(m.client.info().get("Swarm") or {})


def form(members: Sequence[Member], managers: int = 1, timeout: float = 30.0) -> list[str]:
    """`members` in one Swarm. Its lead is the first member that manages a Swarm already, else the first
    member, which inits one (on its address, listening on SWARM_PORT). The others join it, the first
    `managers` - 1 of them as managers; one in the lead's Swarm already is left as it is, one in another Swarm
    is an error naming it (it would have to leave it first: `docker swarm leave`). Waits until every node is
    ready. Returns what was done, a line per engine."""
    if not members:
        return []
    states = {m.name: _swarm(m) for m in members}
    lead = next((m for m in members if states[m.name].get("ControlAvailable")), members[0])
    said = []
    if states[lead.name].get("ControlAvailable"):  # a manager of an active Swarm
        said.append(f"{lead.name}: manages Swarm {states[lead.name]['Cluster']['ID'][:12]} already")
    elif states[lead.name].get("LocalNodeState", "inactive") != "inactive":
        raise TopologyError(
            f"{lead.name} is in a Swarm it does not manage: `docker swarm leave` there, or name a manager "
            "first"
        )
    else:
        try:
            lead.client.swarm.init(advertise_addr=lead.address, listen_addr=f"0.0.0.0:{SWARM_PORT}")
        except docker.errors.APIError as e:
            raise TopologyError(f"{lead.name}: swarm init failed: {e.explanation}") from None
        said.append(f"{lead.name}: Swarm made (manager, advertised at {lead.address}:{SWARM_PORT})")
    lead.client.swarm.reload()
    tokens = lead.client.swarm.attrs["JoinTokens"]
    nodes = {n.id for n in lead.client.nodes.list()}  # of the lead's Swarm, managers and workers
    joined = 1
    for m in members:
        if m is lead:
            continue
        state = states[m.name]
        if state.get("LocalNodeState") == "active":
            if state.get("NodeID") in nodes:
                said.append(f"{m.name}: in it already")
                continue
            raise TopologyError(
                f"{m.name} is in another Swarm than {lead.name}'s: `docker swarm leave` there first"
            )
        role = "Manager" if joined < managers else "Worker"
        try:
            m.client.swarm.join(
                remote_addrs=[f"{lead.address}:{SWARM_PORT}"],
                join_token=tokens[role],
                advertise_addr=m.address,
                listen_addr=f"0.0.0.0:{SWARM_PORT}",
            )
        except docker.errors.APIError as e:
            raise TopologyError(
                f"{m.name}: could not join {lead.name}'s Swarm at {lead.address}:{SWARM_PORT}: "
                f"{e.explanation}"
            ) from None
        joined += 1
        said.append(f"{m.name}: joined as {role.lower()}")

    def all_ready() -> bool:
        nodes = lead.client.nodes.list()
        return len(nodes) >= len(members) and all(n.attrs["Status"]["State"] == "ready" for n in nodes)

    try:
        wait_until(all_ready, f"{len(members)} Swarm nodes ready", timeout, 0.2)
    except WaitTimeout as e:
        raise TopologyError(str(e)) from None
    return said
