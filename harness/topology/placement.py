"""Which Docker engine runs which node (issue 32, `topology.hosts`): pure logic, no Docker. The first
engine the hosts name is home: it runs Toxiproxy (unless a host names it) and every node no host names;
with no hosts at all, every node runs on the local engine, as before placement existed. Remote Locust
workers (`load-1`..`load-N`, --load-workers N) are placed only when a host names one of them or the role
`load`: otherwise they stay subprocesses of the harness and the placement leaves them out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import TopologyError
from harness.shape import LOAD, is_load, is_nats

LOCAL = "local"  # the engine the harness talks to already (DOCKER_HOST, else the local socket)
TOXIPROXY = "toxiproxy"
# A host may name a role for every node of it: every agent-N; the NATS node(s); every load-K (Locust worker).
ROLES = ("agents", "nats", LOAD)
MAX_STANDINS = 9
ENGINE_FORMS = (
    f"local, standin-1..standin-{MAX_STANDINS} (an engine in a container on this machine), "
    "ssh://[user@]host[:port], tcp://host:port, unix:///path/to/docker.sock"
)

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # of a host name (an IPv4 address is labels too)
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"  # or [an IPv6 address]
_PORT = r"(?P<port>[0-9]{1,5})"
_ENGINE_PATTERNS = (
    re.compile(rf"standin-[1-{MAX_STANDINS}]"),
    re.compile(rf"ssh://(?:[A-Za-z0-9._-]+@)?{_HOST}(?::{_PORT})?"),
    re.compile(rf"tcp://{_HOST}:{_PORT}"),
    re.compile(r"unix:///[A-Za-z0-9._/-]+"),
)
# The same forms for the JSON Schema (no named groups there).
ENGINE_PATTERN = (
    "^(" + "|".join([LOCAL, *(p.pattern.replace("?P<port>", "") for p in _ENGINE_PATTERNS)]) + ")$"
)


def engine_problem(engine: object) -> str | None:
    """What is wrong with `engine` as an engine's name (see ENGINE_FORMS), or None."""
    if not isinstance(engine, str):
        return f"got {type(engine).__name__} {engine!r}, not text"
    if engine == LOCAL:
        return None
    if len(engine) > 300:
        return f"got {len(engine):,} characters: too long for an engine's address"
    for pattern in _ENGINE_PATTERNS:
        if found := pattern.fullmatch(engine):
            port = found.groupdict().get("port")
            if port is not None and not 1 <= int(port) <= 65535:
                return f"{engine!r}: port {port} is not 1..65535"
            return None
    if engine.startswith("standin-"):
        return f"{engine!r}: a stand-in engine is standin-1..standin-{MAX_STANDINS}"
    if engine.startswith("tcp://"):
        return f"{engine!r}: a tcp:// engine needs host:port, e.g. tcp://h3:2376"
    return f"{engine!r} is no engine's address"


@dataclass(frozen=True)
class Host:
    """One engine and the nodes it runs, as written: node names (agent-2, nats-1, surrealdb, load-1, ...) or
    roles (`agents`, `nats`, `load`)."""

    engine: str
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placement:
    engines: tuple[str, ...]  # in the order the hosts name them; engines[0] is home
    where: tuple[tuple[str, str], ...]  # (node, engine) for every node and toxiproxy, sorted

    def engine_of(self, node: str) -> str:
        for name, engine in self.where:
            if name == node:
                return engine
        raise KeyError(f"{node!r} is no node of this system ({', '.join(n for n, _ in self.where)})")

    @property
    def several(self) -> bool:
        """More than one engine: the nodes meet over a Swarm's overlay networks, not one engine's bridges."""
        return len(self.engines) > 1

    def nodes_on(self, engine: str) -> list[str]:
        return [node for node, e in self.where if e == engine]


def on_this_machine(engine: str) -> bool:
    """Whether an engine runs on the harness's machine, so that its containers can bind this machine's folders
    (faultfs volumes, clock files): the local engine and another engine's unix socket. Not a stand-in: its
    dockerd has a file system of its own."""
    return engine == LOCAL or engine.startswith("unix://")


def _role_of(node: str) -> str | None:
    if node.startswith("agent-"):
        return "agents"
    if is_load(node):
        return LOAD
    return "nats" if is_nats(node) else None


def place(hosts: Sequence[Host], nodes: Sequence[str]) -> Placement:
    """Each of `nodes` (and toxiproxy) on an engine. A node named on one host runs there; one named on two
    is an error. A role's nodes not named by name are dealt round-robin over the hosts naming that role, in
    host order (agent-1 to the first, agent-2 to the second, ...). Every other node runs on home, the first
    host's engine, except load workers: when no host names one of them nor `load`, they are left out (they
    run as the harness's subprocesses). No hosts: every node on the local engine. Raises TopologyError
    naming the host."""
    nodes = list(nodes) if TOXIPROXY in nodes else [*nodes, TOXIPROXY]
    if not hosts:
        return Placement((LOCAL,), tuple(sorted((n, LOCAL) for n in nodes if _role_of(n) != LOAD)))
    engines: list[str] = []
    for i, host in enumerate(hosts):
        if problem := engine_problem(host.engine):
            raise TopologyError(f"hosts[{i}].engine: {problem}; allowed: {ENGINE_FORMS}")
        if host.engine in engines:
            first = engines.index(host.engine)
            raise TopologyError(
                f"hosts[{i}].engine: {host.engine} is hosts[{first}]'s engine too; allowed: each engine on "
                "one host, its nodes listed together"
            )
        engines.append(host.engine)
    where: dict[str, str] = {}
    named_by: dict[str, int] = {}
    role_hosts: dict[str, list[int]] = {role: [] for role in ROLES}
    for i, host in enumerate(hosts):
        for node in host.nodes:
            if node in ROLES:
                if i not in role_hosts[node]:
                    role_hosts[node].append(i)
            elif node not in nodes and _role_of(node) == LOAD:
                continue  # a Locust worker this run does not have (fewer --load-workers): unused, as a role
            elif node not in nodes:
                raise TopologyError(
                    f"hosts[{i}] ({host.engine}): {node!r} is no node of this system; allowed: "
                    f"{', '.join([*nodes, *ROLES])}"
                )
            elif node in named_by and named_by[node] != i:
                raise TopologyError(
                    f"hosts[{i}] ({host.engine}): {node} is named by hosts[{named_by[node]}] "
                    f"({hosts[named_by[node]].engine}) too; allowed: a node on one host"
                )
            else:
                named_by[node] = i
                where[node] = host.engine
    for role, dealt_to in role_hosts.items():
        rest = [n for n in nodes if _role_of(n) == role and n not in where]
        for k, node in enumerate(rest if dealt_to else []):
            where[node] = hosts[dealt_to[k % len(dealt_to)]].engine
    home = engines[0]
    if not role_hosts[LOAD] and not any(_role_of(n) == LOAD for n in where):
        nodes = [n for n in nodes if _role_of(n) != LOAD]
    return Placement(tuple(engines), tuple(sorted((n, where.get(n, home)) for n in nodes)))
