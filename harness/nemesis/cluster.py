"""Faults that follow a NATS cluster (`nats-leader`, `nats-minority`, `nats-majority`): the nodes are
resolved when the fault starts, from every node's monitoring endpoint (/jsz: the stream's leader as the
node that says it leads), and the fault then acts on them as on nodes named in the file. The start line's
target records which nodes it was (`resolved`), its evidence the leaders seen (`cluster`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import shape
from harness.errors import TopologyError
from harness.http1 import ERRORS, Pool
from harness.nemesis import containers, disks, links
from harness.scenario import BaseFault
from harness.topology.nats_cluster import meta_leader, stream_view

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls, Handler

RESOLVE_TIMEOUT_S = 10.0  # a leader election after an earlier fault takes a few seconds
RESOLVE_INTERVAL_S = 0.1
# What the resolution asks each node: the streams with their cluster (leader, replicas), not the consumers'
# details the samples want. Over harness.http1: an httpx client made per fault cost 65 to 123 ms of
# lateness (its CA bundle loaded on the nemesis's loop, then httpx's own per-request cost).
RESOLVE_QUERY = "/jsz?streams=true"


def leaders(answers: dict[str, dict[str, Any] | None]) -> tuple[str | None, str | None]:
    """(stream leader, meta leader) from each node's /jsz (None: it did not answer): the stream's leader is
    a node that says it leads (a follower's word may be stale), the meta leader the one most nodes name."""
    stream_leader = None
    for node, jsz in answers.items():
        view = stream_view(jsz, shape.STREAM) if jsz else None
        if view is not None and view.leader == node:
            stream_leader = node
    named = [m for jsz in answers.values() if jsz and (m := meta_leader(jsz))]
    return stream_leader, max(set(named), key=named.count) if named else None


async def resolve(ctl: Controls, name: str) -> tuple[list[str], dict[str, Any]]:
    """The nodes `name` stands for now, and what was seen (the leaders, and `waited_s`: how long no node
    said it led the stream, an election after an earlier fault, which the fault's lateness includes);
    waits up to RESOLVE_TIMEOUT_S for a stream leader."""
    urls = ctl.sut.nats_monitor_urls
    nodes = ctl.sut.cfg.nats_names()
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + RESOLVE_TIMEOUT_S
    pools = {n: Pool(urls[n], size=1, timeout=1.0) for n in nodes}

    async def ask(node: str) -> dict[str, Any] | None:
        try:
            status, body = await pools[node].request("GET", RESOLVE_QUERY)
            return json.loads(body) if status == 200 else None
        except (*ERRORS, RecursionError):  # json's errors are ValueErrors; nesting past its depth is not
            return None

    try:
        while True:
            got = await asyncio.gather(*(ask(n) for n in nodes))
            stream_leader, meta = leaders(dict(zip(nodes, got, strict=True)))
            if stream_leader is not None:
                seen = {
                    "stream_leader": stream_leader,
                    "meta_leader": meta,
                    "waited_s": round(loop.time() - began, 3),
                }
                return shape.cluster_members(name, stream_leader, nodes), seen
            if loop.time() >= deadline:
                answered = [n for n, jsz in zip(nodes, got, strict=True) if jsz is not None]
                raise TopologyError(
                    f"{name}: no NATS node said it leads stream {shape.STREAM} within "
                    f"{RESOLVE_TIMEOUT_S:g} s (answered: {', '.join(answered) or 'none'})"
                )
            await asyncio.sleep(RESOLVE_INTERVAL_S)
    finally:
        await asyncio.gather(*(p.aclose() for p in pools.values()))


@dataclass
class Together:
    """Several faults started and stopped as one (a crash or pause of each node of a minority)."""

    parts: list[ActiveFault]
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None

    async def start(self) -> None:
        await asyncio.gather(*(p.start() for p in self.parts))
        per_node = {p.target["node"]: getattr(p, "evidence", None) or {} for p in self.parts}
        self.evidence = {"nodes": per_node}

    async def stop(self) -> None:
        results = await asyncio.gather(*(p.stop() for p in self.parts), return_exceptions=True)
        if errors := [r for r in results if isinstance(r, BaseException)]:
            raise errors[0]


@dataclass
class Following:
    """A fault naming cluster roles: at its start the roles are resolved to nodes and `make` builds the
    fault on those nodes; everything else is that fault's."""

    ctl: Controls
    names: list[str]  # the fault's node names, roles among them
    make: Callable[[list[str]], ActiveFault]
    target: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None
    stop_evidence: dict[str, Any] | None = None
    _inner: ActiveFault | None = None

    async def start(self) -> None:
        nodes: list[str] = []
        seen: dict[str, Any] = {}
        for name in self.names:
            if name in shape.CLUSTER_TARGETS:
                members, seen = await resolve(self.ctl, name)
                nodes += members
            else:
                nodes.append(name)
        nodes = list(dict.fromkeys(nodes))
        self._inner = self.make(nodes)
        await self._inner.start()
        self.target = {**self._inner.target, "follows": self.names, "resolved": nodes}
        self.evidence = {**(getattr(self._inner, "evidence", None) or {}), "cluster": seen}

    async def stop(self) -> None:
        if self._inner is not None:
            await self._inner.stop()
            self.stop_evidence = getattr(self._inner, "stop_evidence", None)


def following(
    handler: Handler, *, many: Callable[[Controls, BaseFault, list[str], str], ActiveFault]
) -> Handler:
    """`handler` for a fault naming nodes; for one naming cluster roles, a Following whose fault is
    `many(ctl, fault, nodes, fault_id)` on the resolved nodes."""

    def handle(ctl: Controls, fault: Any, fault_id: str) -> ActiveFault:
        names = [name for _path, name, kind in fault.references() if kind == "node"]
        if not any(name in shape.CLUSTER_TARGETS for name in names):
            return handler(ctl, fault, fault_id)
        return Following(ctl, names, lambda nodes: many(ctl, fault, nodes, fault_id))

    return handle


def _held(hold: Callable[..., ActiveFault]) -> Callable[[Controls, BaseFault, list[str], str], ActiveFault]:
    def many(ctl: Controls, fault: BaseFault, nodes: list[str], fault_id: str) -> ActiveFault:
        parts = [hold(ctl.containers, node, {"node": node}) for node in nodes]
        return parts[0] if len(parts) == 1 else Together(parts, {"nodes": nodes})

    return many


def _isolated(ctl: Controls, fault: Any, nodes: list[str], fault_id: str) -> ActiveFault:
    # The nodes cut off from everyone else together: routes to the rest and clients' links cut, the routes
    # among them kept (a minority partitioned from the majority).
    pairs = [
        (ln.source, ln.target) for ln in ctl.links.values() if (ln.source in nodes) != (ln.target in nodes)
    ]
    return links.cut(ctl, links.known(ctl, pairs), fault.mode, fault_id, {"nodes": nodes})


def _power_lost(ctl: Controls, fault: BaseFault, nodes: list[str], fault_id: str) -> ActiveFault:
    return disks.PowerLoss(ctl, nodes, {"nodes": nodes})


# The kinds that may follow the cluster (harness.scenario.cluster_targets.FOLLOWING_KINDS), each acting on
# the resolved nodes.
def handlers() -> dict[str, Handler]:
    return {
        "crash": following(containers.crash, many=_held(containers.killed)),
        "pause": following(containers.pause, many=_held(containers.paused)),
        "isolate": following(links.isolate, many=_isolated),
        "power-loss": following(disks.power_loss, many=_power_lost),
    }
