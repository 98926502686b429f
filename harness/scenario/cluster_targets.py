"""Which faults may name a NATS cluster's nodes by role (`nats-leader`, `nats-minority`, `nats-majority`,
resolved when the fault starts; harness.shape.cluster_members), and where such a name makes no sense: a
single server, a kind that acts on something else than whole nodes, a power loss of nodes not on faultfs."""

from __future__ import annotations

from collections.abc import Iterator

from harness.scenario.fault_base import BaseFault
from harness.scenario.types import Loc
from harness.shape import CLUSTER_TARGETS, nats_names

# The kinds that act on whole nodes and so can follow the cluster: kill, pause, cut off, power loss.
FOLLOWING_KINDS = ("crash", "pause", "isolate", "power-loss")


def is_cluster_target(name: str) -> bool:
    return name in CLUSTER_TARGETS


def misfits(fault: BaseFault, nats: int, on_faultfs: tuple[str, ...]) -> Iterator[tuple[Loc, str, str]]:
    """(path inside the fault, what, allowed) for each cluster target the fault names where it cannot act.
    A single server is refused by the node check (harness.scenario.types._node_error)."""
    for path, name, kind in fault.references():
        if kind != "node" or not is_cluster_target(name) or nats == 1:
            continue
        if fault.fault not in FOLLOWING_KINDS:
            yield (
                path,
                f"{name} is resolved when a fault starts only for {', '.join(FOLLOWING_KINDS)}; "
                f"a {fault.fault} needs a node named",
                f"a crash, pause, isolate or power-loss of {name}, or a node: nats-1..nats-{nats}",
            )
        elif fault.fault == "power-loss" and not set(nats_names(nats)) <= set(on_faultfs):
            yield (
                path,
                f"{name} may be any NATS node, and not every NATS node's data is on faultfs",
                "topology.disk {nats: faultfs} (every NATS node), or a node on faultfs: "
                + (", ".join(on_faultfs) or "none"),
            )
