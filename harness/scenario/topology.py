"""The system a scenario brings up (`topology`): agents, quorum, the agents' settings, where the nodes keep
their data (`topology.disk`: the container's own file system, or faultfs, which can lose unsynced writes
and fail calls; docs/faultfs.md) and NATS (`topology.nats`: one server or a cluster, the stream's
replicas, how JetStream syncs its files) and which implementation runs each node
(`topology.implementations`) and which engine runs each node (`topology.hosts`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from harness.scenario.hosts import HOSTS_FORMS, HostEntry, host_problems
from harness.scenario.implementations import IMPLEMENTATION_FORMS, Implementations
from harness.scenario.types import (
    DURATION_FORMS,
    MAX_BUFFER_CAP,
    PositiveDuration,
    _node_error,
    _positive_duration,
    _problem,
    _Strict,
    shorten,
)
from harness.shape import MAX_AGENTS, NATS_NODES, agent_names, is_nats, nats_names

DiskKind = Literal["container", "faultfs"]
# The nodes that keep data: NATS's store_dir, SurrealDB's SurrealKV files, each agent's journal.
DISK_KEYS = ("nats", "surrealdb", "agents")
DISK_FORMS = (
    "faultfs (every node that keeps data: nats, surrealdb, the agents), container (none), or a mapping "
    "of nats, surrealdb, agents, agent-N to faultfs or container, e.g. {nats: faultfs}"
)


def _disk_value(value: Any) -> str:
    if value not in ("container", "faultfs"):
        raise _problem(f"got {shorten(repr(value))}", "faultfs or container")
    return value


def _disk_map(value: Any) -> dict[str, str]:
    """`faultfs`, `container` or {node-or-group: kind}, as a mapping (the one shape the rest reads)."""
    if isinstance(value, str):
        value = _disk_value(value)
        return dict.fromkeys(DISK_KEYS, value)
    if not isinstance(value, dict):
        raise _problem(f"got {shorten(repr(value))}", DISK_FORMS)
    known = (*DISK_KEYS, *agent_names(MAX_AGENTS))
    for key, kind in value.items():
        if key not in known:
            raise _problem(
                f"{shorten(repr(key))} keeps no data on a disk of its own (orchestrator and projector keep "
                "none)",
                "nats, surrealdb, agents, agent-1..agent-7",
                at=(key,),
            )
        if kind not in ("container", "faultfs"):
            raise _problem(f"got {shorten(repr(kind))}", "faultfs or container", at=(key,))
    return dict(value)


Disks = Annotated[
    dict[str, DiskKind],
    BeforeValidator(_disk_map),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": ["container", "faultfs"]},
                {
                    "type": "object",
                    "propertyNames": {"pattern": rf"^(nats|surrealdb|agents|agent-[1-{MAX_AGENTS}])$"},
                    "additionalProperties": {"enum": ["container", "faultfs"]},
                },
            ],
            "description": DISK_FORMS,
        }
    ),
]


def on_faultfs(disk: dict[str, str], agents: int, nats: int = 1) -> tuple[str, ...]:
    """The nodes whose data directory sits on faultfs: a node's own entry wins over its group's; `nats`
    is every NATS node of a cluster."""
    nodes = []
    for node in (*nats_names(nats), "surrealdb", *agent_names(agents)):
        group = "agents" if node.startswith("agent-") else "nats" if is_nats(node) else node
        if disk.get(node, disk.get(group, "container")) == "faultfs":
            nodes.append(node)
    return tuple(nodes)


SYNC_FORMS = (
    f"default (NATS's own: every 2 minutes), always (before each ack), or a duration: {DURATION_FORMS}"
)


def _sync_interval(value: Any) -> str | float:
    if value in ("default", "always"):
        return value
    try:
        return _positive_duration(value)
    except Exception:
        raise _problem(f"got {shorten(repr(value))}", SYNC_FORMS) from None


SyncInterval = Annotated[
    str | float,
    BeforeValidator(_sync_interval),
    WithJsonSchema({"anyOf": [{"enum": ["default", "always"]}, {"type": ["number", "string"]}]}),
]


NODES_FORMS = "1 (a single server), 3 or 5 (a cluster: nats-1..nats-N)"


def _nats_nodes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in NATS_NODES:
        raise _problem(f"got {shorten(repr(value))}", NODES_FORMS)
    return value


NatsNodes = Annotated[
    int, BeforeValidator(_nats_nodes), WithJsonSchema({"enum": list(NATS_NODES), "description": NODES_FORMS})
]


class NatsSettings(_Strict):
    nodes: NatsNodes = Field(1, description="NATS servers: " + NODES_FORMS)
    replicas: int | None = Field(
        None,
        ge=1,
        le=max(NATS_NODES),
        description="the stream's replicas, 1..nodes; absent: 1 for a single server, 3 for a cluster",
    )
    sync_interval: SyncInterval = Field(
        "default",
        description="how often JetStream fsyncs its files: " + SYNC_FORMS + "; written into nats-server's "
        "config file (no flag sets it)",
    )

    @model_validator(mode="after")
    def _replicas_within_nodes(self) -> NatsSettings:
        if self.replicas is None:  # resolved here, so scenario.json says what ran
            self.replicas = 1 if self.nodes == 1 else 3
        elif self.replicas > self.nodes:
            raise _problem(
                f"replicas {self.replicas} is more than the {self.nodes} NATS nodes",
                f"1..{self.nodes}",
                at=("replicas",),
            )
        return self

    @property
    def stream_replicas(self) -> int:
        """The stream's replicas: as set, else 1 for a single server and 3 for a cluster."""
        return self.replicas or 1

    def config_value(self) -> str | None:
        """The `sync_interval` value of nats-server's config file; None: leave NATS's default."""
        v = self.sync_interval
        if v == "default":
            return None
        if v == "always":
            return "always"
        return f"{round(float(v) * 1000)}ms"


# SurrealDB's units as it prints a duration, largest first (a year is 365 days).
_SURREAL_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def surreal_duration(seconds: int) -> str:
    """Whole seconds as SurrealDB prints a duration: 3600 -> 1h, 90 -> 1m30s."""
    parts = []
    for unit, size in _SURREAL_UNITS:
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


class Topology(_Strict):
    agents: int = Field(3, ge=1, le=MAX_AGENTS)
    quorum: int | None = Field(
        None, ge=1, le=MAX_AGENTS, description="agreements needed; absent: a majority of the agents"
    )
    buffer_cap: int = Field(
        256, ge=1, le=MAX_BUFFER_CAP, description="pending-commit buffer capacity (intents)"
    )
    intent_timeout: PositiveDuration = 0.08
    commit_timeout: PositiveDuration = 0.4
    replay_interval: PositiveDuration = 0.2
    disk: Disks = Field(default_factory=dict, description=DISK_FORMS + "; absent: container")
    nats: NatsSettings = Field(default_factory=NatsSettings)
    analytics: bool = Field(
        False,
        description="an analytics node (netsync's analytics role, node `analytics`) follows the store's "
        "changefeed and the scout's summaries; its applied changes and view are judged (analytics.jsonl)",
    )
    changefeed_retention: PositiveDuration = Field(
        3600.0,
        description="how long SurrealDB keeps the projected table's changefeed (NETSYNC_CHANGEFEED_RETENTION "
        "of the projector and analytics); whole seconds, 1s or more: " + DURATION_FORMS,
    )
    implementations: Implementations | None = Field(
        None,
        description="which implementation runs which node (agents, orchestrator, projector): "
        f"{IMPLEMENTATION_FORMS}; absent, or a node left out: --sut's, else netsync",
    )
    hosts: list[HostEntry] = Field(default_factory=list, description=HOSTS_FORMS)

    @model_validator(mode="after")
    def _quorum_within_agents(self) -> Topology:
        if self.quorum is not None and self.quorum > self.agents:
            raise _problem(
                f"quorum {self.quorum} is more than the {self.agents} agents",
                f"1..{self.agents}",
                at=("quorum",),
            )
        if self.changefeed_retention < 1 or self.changefeed_retention != int(self.changefeed_retention):
            raise _problem(
                f"got {self.changefeed_retention:g}s: SurrealDB keeps a changefeed for whole seconds",
                "a whole number of seconds, 1s or more: 30s, 10m, 1h",
                at=("changefeed_retention",),
            )
        for key in self.disk:
            if problem := (_node_error(key, self.agents) if key.startswith("agent-") else None):
                raise _problem(*problem, at=("disk", key))
        chosen = self.implementations.agents if self.implementations is not None else None
        if isinstance(chosen, list) and len(chosen) != self.agents:
            raise _problem(
                f"{len(chosen)} implementations for the {self.agents} agents",
                f"a list of {self.agents} (one per agent, agent-1 first) or one name for all: "
                f"{IMPLEMENTATION_FORMS}",
                at=("implementations", "agents"),
            )
        for at, what, allowed in host_problems(self.hosts, self.agents, self.nats.nodes, self.analytics):
            raise _problem(what, allowed, at=("hosts", *at))
        return self

    @property
    def faultfs_nodes(self) -> tuple[str, ...]:
        """The nodes whose data directory sits on faultfs."""
        return on_faultfs(self.disk, self.agents, self.nats.nodes)

    @property
    def surreal_retention(self) -> str:
        """changefeed_retention as SurrealDB writes a duration back in INFO FOR DB (`1h`, `1m30s`): the
        analytics role compares its own with the table's definition and warns when they differ."""
        return surreal_duration(int(self.changefeed_retention))

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else self.agents // 2 + 1
