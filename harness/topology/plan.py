"""What a system is before any container exists: its configuration (`SystemConfig`: agents, netsync's
settings, the stream's limits, faultfs and NATS settings) and the data-plane links it is planned with,
each a Toxiproxy proxy with its own listen port (`plan_links`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness import shape
from harness.topology.services import NATS_CLIENT_PORT, SURREAL_PORT

P2P_PORT = 4001
HTTP_PORT = 8080
JOURNAL_DIR = "/var/lib/netsync"  # an agent's NETSYNC_JOURNAL_DIR (its faultfs volume goes there)


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
    buggify: tuple[str, ...] = ()  # netsync's planted bugs (NETSYNC_BUGGIFY, docs/contract.md)
    faultfs: tuple[str, ...] = ()  # nodes whose data directory sits on faultfs (topology.disk)
    nats_sync_interval: str | None = None  # JetStream's sync_interval in NATS's config; None: its default

    def agent_names(self) -> list[str]:
        return shape.agent_names(self.agents)


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
}
_UPSTREAM_PORTS = {"nats": NATS_CLIENT_PORT, "surrealdb": SURREAL_PORT}  # else libp2p's


def _agent_index(name: str) -> int:
    return int(name.removeprefix("agent-"))


def _listen_port(source: str, target: str) -> int:
    if target.startswith("agent-"):
        return 21000 + 10 * _agent_index(source) + _agent_index(target)
    if target == "orchestrator":
        return 22000 + _agent_index(source)
    return _SERVICE_LINK_PORTS[(source, target)]


def plan_links(cfg: SystemConfig) -> dict[str, Link]:
    """A proxy for every data-plane link of the shape (harness.shape.data_plane_links)."""
    links = [
        Link(a, b, _listen_port(a, b), f"{b}:{_UPSTREAM_PORTS.get(b, P2P_PORT)}")
        for a, b in shape.data_plane_links(cfg.agents)
    ]
    return {link.name: link for link in links}
