"""What a system is before any container exists: its configuration (`SystemConfig`: agents, netsync's
settings, the stream's limits, faultfs and NATS settings) and the data-plane links it is planned with,
each a Toxiproxy proxy with its own listen port (`plan_links`), and the engine each node runs on
(`SystemConfig.placement`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness import shape
from harness.topology.placement import TOXIPROXY, Host, Placement, on_this_machine, place
from harness.topology.services import NATS_CLIENT_PORT, NATS_ROUTE_PORT, SURREAL_PORT

P2P_PORT = 4001
HTTP_PORT = 8080
JOURNAL_DIR = "/var/lib/netsync"  # an agent's NETSYNC_JOURNAL_DIR (its faultfs volume goes there)
# An agent's wall clock in a scenario with clock faults: libfaketime preloaded, its offset read from
# CLOCK_FILE (`+0`, `-30`: seconds) at every reading of the clock (no cache: a fault takes effect at once,
# about 7 us a reading), the folder a host folder the nemesis writes; CLOCK_MONOTONIC left alone
# (docs/clock.md). Only in netsync's image, which has them.
CLOCK_DIR = "/etc/faketime"
CLOCK_FILE = f"{CLOCK_DIR}/offset"
CLOCK_ENV = {
    "LD_PRELOAD": "/usr/lib/faketime/libfaketimeMT.so.1",
    "FAKETIME_TIMESTAMP_FILE": CLOCK_FILE,
    "FAKETIME_NO_CACHE": "1",
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
}


@dataclass(frozen=True)
class SystemConfig:
    agents: int = 3
    quorum: int | None = None
    buffer_cap: int = 256
    intent_timeout_ms: int = 80
    commit_timeout_ms: int = 400
    replay_interval_ms: int = 200
    duplicate_window_s: float = 120
    stream_max_msgs: int = -1
    stream_max_bytes: int = -1
    stream_max_age_s: float = 0
    telemetry_interval_ms: int = 1000
    sut_image: str | None = None  # another implementation of docs/contract.md
    # node -> implementation built here (harness/implementations.py); a node absent: sut_image, else netsync
    implementations: tuple[tuple[str, str], ...] = ()
    buggify: tuple[str, ...] = ()  # netsync's planted bugs (NETSYNC_BUGGIFY, docs/contract.md)
    clock: bool = False  # the agents run under libfaketime (a scenario with clock faults; docs/clock.md)
    surreal_clock: bool = False  # SurrealDB runs under libfaketime too (a clock fault targets it)
    faultfs: tuple[str, ...] = ()  # nodes whose data directory sits on faultfs (topology.disk)
    nats_sync_interval: str | None = None  # JetStream's sync_interval in NATS's config; None: its default
    nats_nodes: int = 1  # one server (`nats`) or a cluster (`nats-1`..`nats-N`)
    stream_replicas: int = 1
    analytics: bool = False  # the analytics node follows the store's changefeed (topology.analytics)
    changefeed_retention: str = "1h"  # NETSYNC_CHANGEFEED_RETENTION of the projector and analytics
    hosts: tuple[Host, ...] = ()  # which engine runs which node (topology.hosts); none: all on the local one
    load_workers: int = 0  # --load-workers N: Locust workers load-1..N, placed where a host names them

    def agent_names(self) -> list[str]:
        return shape.agent_names(self.agents)

    def nats_names(self) -> list[str]:
        return shape.nats_names(self.nats_nodes)

    def placement(self) -> Placement:
        """Which engine runs each node and Toxiproxy (harness/topology/placement.py). Raises TopologyError
        for hosts that do not fit this system."""
        nodes = shape.node_names(self.agents, self.nats_nodes, self.analytics)
        return place(self.hosts, [*nodes, *shape.load_names(self.load_workers), TOXIPROXY])

    def away_from_folders(self) -> str | None:
        """Why this system cannot run as placed, or None: a node that needs a folder of this machine (its
        data on faultfs, its clock under a clock fault: docs/faultfs.md, docs/clock.md) placed on an engine
        of another machine or a stand-in, whose containers cannot bind it."""
        needs = {n: "its data on faultfs (topology.disk)" for n in self.faultfs}
        if self.clock:
            needs |= dict.fromkeys(self.agent_names(), "its clock under a clock fault")
        if self.surreal_clock:
            needs["surrealdb"] = "its clock under a clock fault"
        if not self.hosts or not needs:
            return None
        placement = self.placement()
        away = [
            f"{n} ({why}) on {e}"
            for n, why in needs.items()
            if not on_this_machine(e := placement.engine_of(n))
        ]
        if not away:
            return None
        return (
            f"needs this machine's engine for {'; '.join(away)}: a folder of this machine cannot be bound "
            "into another engine's container (topology.hosts: place those nodes on local; docs/scale.md)"
        )


@dataclass(frozen=True)
class Link:
    """A directed data-plane link `source>target`: the connections source dials to target."""

    source: str
    target: str
    port: int  # Toxiproxy's listen port for it
    upstream: str

    @property
    def name(self) -> str:
        return f"{self.source}>{self.target}"


_SERVICE_LINK_PORTS = {
    ("orchestrator", "nats"): 23001,
    ("projector", "nats"): 23002,
    ("projector", "surrealdb"): 23003,
    ("analytics", "surrealdb"): 23004,
    ("analytics", "nats"): 23005,
}
# In a cluster: the clients' links to node i, and node i's route to node j.
_CLUSTER_CLIENT_PORTS = {"orchestrator": 23010, "projector": 23020, "analytics": 23030}
_ROUTE_PORTS = 23100


def _index(name: str) -> int:
    """N of `agent-N` or `nats-N`."""
    return int(name.rpartition("-")[2])


def _listen_port(source: str, target: str) -> int:
    if target.startswith("agent-"):
        return 21000 + 10 * _index(source) + _index(target)
    if target == "orchestrator":
        return 22000 + _index(source)
    if target.startswith("nats-"):
        if source.startswith("nats-"):
            return _ROUTE_PORTS + 10 * _index(source) + _index(target)
        return _CLUSTER_CLIENT_PORTS[source] + _index(target)
    return _SERVICE_LINK_PORTS[(source, target)]


def _upstream(source: str, target: str) -> str:
    if shape.is_nats(target):
        return f"{target}:{NATS_ROUTE_PORT if shape.is_nats(source) else NATS_CLIENT_PORT}"
    return f"{target}:{SURREAL_PORT if target == 'surrealdb' else P2P_PORT}"


def plan_links(cfg: SystemConfig) -> dict[str, Link]:
    """A proxy for every data-plane link of the shape (harness.shape.data_plane_links), NATS's cluster
    routes among them."""
    links = [
        Link(a, b, _listen_port(a, b), _upstream(a, b))
        for a, b in shape.data_plane_links(cfg.agents, cfg.nats_nodes, cfg.analytics)
    ]
    return {link.name: link for link in links}


def links_from(links: dict[str, Link], source: str, targets: list[str]) -> list[Link]:
    """The source's links to each of `targets`, in their order: e.g. the orchestrator's to every NATS node."""
    return [links[f"{source}>{t}"] for t in targets]


def nats_routes(cfg: SystemConfig, links: dict[str, Link]) -> dict[str, list[str]] | None:
    """Each NATS node's routes to the others, each through its own proxy (`nats-route://toxiproxy:PORT`);
    None for a single server."""
    if cfg.nats_nodes == 1:
        return None
    servers = cfg.nats_names()
    return {
        n: [
            f"nats-route://toxiproxy:{ln.port}" for ln in links_from(links, n, [t for t in servers if t != n])
        ]
        for n in servers
    }
