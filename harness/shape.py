"""The system's shape as the harness sees it, in one place: the nodes, the data-plane links between them,
and the names the agent contract (docs/contract.md) fixes for the stream, its subjects, the projector's
consumer and the store. netsync keeps its own copies: it runs in its own image and never imports this."""

from __future__ import annotations

# Nodes

MAX_AGENTS = 7
SERVICES = ("orchestrator", "projector", "nats", "surrealdb")
GROUPS = ("agents", "*")  # in a link selector: every agent; every node


def agent_names(agents: int) -> list[str]:
    return [f"agent-{i}" for i in range(1, agents + 1)]


def node_names(agents: int) -> list[str]:
    """Every container of a topology with `agents` agents that a fault can name."""
    return [*agent_names(agents), *SERVICES]


# Data-plane links (each one a Toxiproxy proxy)


def data_plane_links(agents: int) -> list[tuple[str, str]]:
    """Every proxied link of the topology as (from, to): the links a fault can act on."""
    names = agent_names(agents)
    return [
        *((a, b) for a in names for b in names if a != b),
        *((a, "orchestrator") for a in names),
        ("orchestrator", "nats"),
        ("projector", "nats"),
        ("projector", "surrealdb"),
    ]


def select_links(selector: str, agents: int) -> list[tuple[str, str]]:
    """The links of a topology with `agents` agents that the selector `FROM>TO` names; each end a node or
    a group (`agents`, `*`). The scenario model checks selectors; here a malformed one is a ValueError."""
    src, sep, dst = selector.partition(">")
    if not sep or ">" in dst:
        raise ValueError(f"not a link selector: {selector!r} (FROM>TO)")
    src, dst = src.strip(), dst.strip()
    return [(a, b) for a, b in data_plane_links(agents) if _names(src, a) and _names(dst, b)]


def _names(endpoint: str, node: str) -> bool:
    return endpoint in (node, "*") or (endpoint == "agents" and node.startswith("agent-"))


# JetStream: the stream the orchestrator publishes intents to, and the projector's consumer

STREAM = "SENTIMENT"
STREAM_SUBJECTS = "root.solar.command.>"
COMMAND_SUBJECT = "root.solar.command.sentiment.set"
CONSUMER = "projector"  # the projector's durable consumer

# SurrealDB: where the projector writes

SURREAL_NS, SURREAL_DB = "solar", "netsync"
STORE_TABLE = "sentiment"
