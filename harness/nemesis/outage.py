"""Service outages (NATS, SurrealDB): refuse or blackhole every link into the service, or kill or pause
its container."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.nemesis.containers import killed, paused
from harness.nemesis.links import cut
from harness.scenario import OutageFault
from harness.shape import is_nats
from harness.topology.plan import Link

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls


def outage_links(links: dict[str, Link], target: str) -> list[str]:
    """The links an outage of `target` cuts. Every client of the service reaches it through a proxy, so
    cutting them all is the outage; in a NATS cluster, every client's link to every node (the routes
    between nodes stay: the cluster holds)."""
    return [
        name
        for name, ln in links.items()
        if ln.target == target or (target == "nats" and is_nats(ln.target) and not is_nats(ln.source))
    ]


def _through_links(ctl: Controls, fault: OutageFault, fault_id: str) -> ActiveFault:
    return cut(ctl, outage_links(ctl.links, fault.target), fault.mode, fault_id, {"node": fault.target})


def _killed(ctl: Controls, fault: OutageFault, fault_id: str) -> ActiveFault:
    return killed(ctl.containers, fault.target, {"node": fault.target, "mode": "kill"})


def _paused(ctl: Controls, fault: OutageFault, fault_id: str) -> ActiveFault:
    return paused(ctl.containers, fault.target, {"node": fault.target, "mode": "pause"})


MODES: dict[str, Callable[[Controls, OutageFault, str], ActiveFault]] = {
    "refuse": _through_links,
    "blackhole": _through_links,
    "kill": _killed,
    "pause": _paused,
}


def outage(ctl: Controls, fault: OutageFault, fault_id: str) -> ActiveFault:
    return MODES[fault.mode](ctl, fault, fault_id)


NEMESES: dict[str, Callable[[Controls, Any, str], ActiveFault]] = {"outage": outage}
