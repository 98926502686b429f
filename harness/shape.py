"""The system's shape as the harness sees it, in one place: the nodes, the data-plane links between them,
and the names the agent contract (docs/contract.md) fixes for the stream, its subjects, the projector's
consumer and the store. netsync keeps its own copies: it runs in its own image and never imports this."""

from __future__ import annotations

# Nodes

MAX_AGENTS = 7
NATS_NODES = (1, 3, 5)  # a single NATS server, or a cluster of 3 or 5 (topology.nats.nodes)
SERVICES = ("orchestrator", "projector", "nats", "surrealdb")
GROUPS = ("agents", "*")  # in a link selector: every agent; every node
# In a link selector, `nats` is the single server, or in a cluster every NATS node (`*>nats`).


def agent_names(agents: int) -> list[str]:
    return [f"agent-{i}" for i in range(1, agents + 1)]


def nats_names(nats: int = 1) -> list[str]:
    """The NATS nodes: `nats` alone, or `nats-1`..`nats-N` in a cluster of N."""
    return ["nats"] if nats == 1 else [f"nats-{i}" for i in range(1, nats + 1)]


def is_nats(node: str) -> bool:
    return node == "nats" or node.startswith("nats-")


# Names a fault may give in a NATS cluster for nodes resolved when it starts, from NATS's monitoring: the
# stream's leader; a minority (1 of 3, 2 of 5) of its followers, never the leader; a majority (the others:
# the leader and the rest of the followers). See `cluster_members`.
CLUSTER_TARGETS = ("nats-leader", "nats-minority", "nats-majority")


def cluster_members(name: str, leader: str, nodes: list[str]) -> list[str]:
    """The nodes `name` (one of CLUSTER_TARGETS) stands for in a cluster of `nodes` led by `leader`. The
    minority is the first followers by name, so a run repeats with the same leader; the majority is
    everything else, so the two split the cluster."""
    if leader not in nodes:
        raise ValueError(f"leader {leader!r} is not one of {nodes}")
    followers = sorted((n for n in nodes if n != leader), key=lambda n: (len(n), n))
    minority = followers[: (len(nodes) - 1) // 2]
    if name == "nats-leader":
        return [leader]
    if name == "nats-minority":
        return minority
    if name == "nats-majority":
        return [n for n in nodes if n not in minority]
    raise ValueError(f"not a cluster target: {name!r} ({', '.join(CLUSTER_TARGETS)})")


ANALYTICS = "analytics"  # the opt-in consumer of the store's changefeed (topology.analytics)


def node_names(agents: int, nats: int = 1, analytics: bool = False) -> list[str]:
    """Every container of a topology with `agents` agents and `nats` NATS nodes (and the analytics node,
    when it has one) that a fault can name."""
    extra = [ANALYTICS] if analytics else []
    return [*agent_names(agents), "orchestrator", "projector", *extra, *nats_names(nats), "surrealdb"]


LOAD = "load"  # remote Locust workers: nodes load-1..load-N (--load-workers N), placed when a host names them
MAX_LOAD_WORKERS = 64  # the most load-K a hosts file may name (--load-workers is not known when it is read)


def load_names(workers: int) -> list[str]:
    return [f"{LOAD}-{k}" for k in range(1, workers + 1)]


def is_load(node: str) -> bool:
    prefix, _, k = node.partition("-")
    return prefix == LOAD and k.isdigit() and not k.startswith("0")


# Data-plane links (each one a Toxiproxy proxy)


def data_plane_links(agents: int, nats: int = 1, analytics: bool = False) -> list[tuple[str, str]]:
    """Every proxied link of the topology as (from, to): the links a fault can act on. In a NATS cluster
    the orchestrator and the projector have a link to every NATS node, and every NATS node one to each
    other (its cluster route). The analytics node, when there is one, reads SurrealDB and hears the
    scout's summaries from NATS."""
    names, servers = agent_names(agents), nats_names(nats)
    extra = [*((ANALYTICS, n) for n in servers), (ANALYTICS, "surrealdb")] if analytics else []
    return [
        *((a, b) for a in names for b in names if a != b),
        *((a, "orchestrator") for a in names),
        *(("orchestrator", n) for n in servers),
        *(("projector", n) for n in servers),
        ("projector", "surrealdb"),
        *((a, b) for a in servers for b in servers if a != b),
        *extra,
    ]


def select_links(selector: str, agents: int, nats: int = 1, analytics: bool = False) -> list[tuple[str, str]]:
    """The links of a topology with `agents` agents and `nats` NATS nodes that the selector `FROM>TO`
    names; each end a node or a group (`agents`, `*`, and `nats` in a cluster). The scenario model checks
    selectors; here a malformed one is a ValueError."""
    src, sep, dst = selector.partition(">")
    if not sep or ">" in dst:
        raise ValueError(f"not a link selector: {selector!r} (FROM>TO)")
    src, dst = src.strip(), dst.strip()
    links = data_plane_links(agents, nats, analytics)
    return [(a, b) for a, b in links if _names(src, a) and _names(dst, b)]


def _names(endpoint: str, node: str) -> bool:
    return (
        endpoint in (node, "*")
        or (endpoint == "agents" and node.startswith("agent-"))
        or (endpoint == "nats" and is_nats(node))
    )


# JetStream: the stream the orchestrator publishes intents to, and the projector's consumer

STREAM = "SENTIMENT"
STREAM_SUBJECTS = "root.solar.command.>"
COMMAND_SUBJECT = "root.solar.command.sentiment.set"
TELEMETRY_SUBJECT = "root.solar.telemetry.peer-health"  # the scout's summaries (core NATS, not the stream)
CONSUMER = "projector"  # the projector's durable consumer

# SurrealDB: where the projector writes

SURREAL_NS, SURREAL_DB = "solar", "netsync"
STORE_TABLE = "sentiment"
