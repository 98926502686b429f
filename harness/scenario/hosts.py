"""`topology.hosts`: which engine runs which node (issue 32; the rules are harness/topology/placement.py's),
validated with file:line errors like every field, and the same list read from a `--hosts` file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, WithJsonSchema

from harness.errors import TopologyError
from harness.scenario.types import Loc, ScenarioError, _node_error, _problem, _Strict, shorten
from harness.shape import (
    CLUSTER_TARGETS,
    MAX_AGENTS,
    MAX_LOAD_WORKERS,
    NATS_NODES,
    is_load,
    load_names,
    node_names,
)
from harness.topology.placement import (
    ENGINE_FORMS,
    ENGINE_PATTERN,
    ROLES,
    TOXIPROXY,
    Host,
    engine_problem,
    place,
)

HOSTS_FORMS = (
    "a list of {engine, nodes}: engine one of " + ENGINE_FORMS + "; nodes the node names it runs "
    "(agent-2, nats-1, surrealdb, orchestrator, projector, analytics, toxiproxy, load-1) or roles (agents: "
    "every agent, dealt round-robin over the hosts naming it; nats: the NATS node or nodes; load: the Locust "
    "workers of --load-workers N, load-1..load-N, dealt the same way); the first engine runs every node no "
    "host names (load workers: when a host names one, else they stay on this machine); absent: every node "
    "on the local engine"
)
HOST_NODE_FORMS = (
    "a node name (agent-N, nats or nats-N, surrealdb, orchestrator, projector, analytics, toxiproxy, "
    f"load-1..load-{MAX_LOAD_WORKERS}) or a role (agents, nats, load)"
)


def _engine(value: Any) -> str:
    if problem := engine_problem(value):
        raise _problem(shorten(problem, 120), ENGINE_FORMS)
    return value


def _host_node(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _problem(f"got {shorten(repr(value))}", HOST_NODE_FORMS)
    return value


Engine = Annotated[
    str,
    BeforeValidator(_engine),
    WithJsonSchema({"type": "string", "pattern": ENGINE_PATTERN, "description": ENGINE_FORMS}),
]
HostNode = Annotated[
    str, BeforeValidator(_host_node), WithJsonSchema({"type": "string", "description": HOST_NODE_FORMS})
]


class HostEntry(_Strict):
    """One engine and the nodes it runs."""

    engine: Engine = Field(description=ENGINE_FORMS)
    nodes: list[HostNode] = Field(
        default_factory=list, description=HOST_NODE_FORMS + "; none: only what no host names (home)"
    )


def as_hosts(entries: list[HostEntry]) -> tuple[Host, ...]:
    """The entries as placement reads them."""
    return tuple(Host(e.engine, tuple(e.nodes)) for e in entries)


def host_problems(
    entries: list[HostEntry], agents: int, nats: int = 1, analytics: bool = False
) -> Iterator[tuple[Loc, str, str]]:
    """What is wrong with the hosts in a topology of `agents` agents, `nats` NATS nodes (and the analytics
    node or not): (path under `hosts`, what, allowed). Names are judged here for the model's messages; the
    rest (a node on two hosts, an engine twice) by placement itself, so the two never disagree."""
    named = True
    targets = ", " + ", ".join(CLUSTER_TARGETS)  # in a cluster's list of nodes a fault may name
    for i, entry in enumerate(entries):
        for j, node in enumerate(entry.nodes):
            at = (i, "nodes", j)
            if node in ROLES or node == TOXIPROXY:
                continue
            if is_load(node):
                if int(node.partition("-")[2]) > MAX_LOAD_WORKERS:
                    named = False
                    yield (
                        at,
                        f"{node}: at most {MAX_LOAD_WORKERS} load workers",
                        f"load-1..load-{MAX_LOAD_WORKERS}",
                    )
                continue
            if node in CLUSTER_TARGETS:
                named = False
                what = f"{node} is resolved when a fault starts; a host runs nodes by name"
                yield at, what, "nats (every NATS node) or nats-1..nats-N"
            elif problem := _node_error(node, agents, nats, analytics):
                named = False
                allowed = problem[1].replace(targets, "")
                yield at, problem[0], allowed + ", toxiproxy, load-K, or a role: agents, nats, load"
    if named:
        try:
            place(as_hosts(entries), [*node_names(agents, nats, analytics), *load_names(MAX_LOAD_WORKERS)])
        except TopologyError as e:
            yield (), str(e), ""


def _shown(loc: Loc) -> str:
    return ".".join(map(str, loc))


def read_hosts_file(path: str | Path) -> list[dict[str, Any]]:
    """The hosts a `--hosts` file names: a YAML list of {engine, nodes}, or a mapping {hosts: [...]}.
    Their form is judged here (`FILE:LINE: hosts.0.engine: what; allowed: ...`); their nodes against each
    scenario's topology when it is loaded with them. Raises ScenarioError."""
    from harness.scenario.yaml_source import child, read

    file = str(path)
    root, data, _count = read(Path(path), file)
    node, prefix = root, ("hosts",)  # a bare list is read as the hosts, and named so in problems
    if isinstance(data, dict) and set(data) == {"hosts"}:
        data = data["hosts"]
        found = child(root, "hosts") if root is not None else None
        node = found[1] if found else root
    if not isinstance(data, list):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ScenarioError(f"{file}:{line}: (top level): got {shorten(repr(data))}; allowed: {HOSTS_FORMS}")
    try:
        entries = TypeAdapter(list[HostEntry]).validate_python(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = tuple(err["loc"]) + tuple(err.get("ctx", {}).get("at", ()))
            allowed = err.get("ctx", {}).get("allowed", "")
            what = (
                err["msg"]
                if err["type"] == "scenario"
                else f"{err['msg']} (got {shorten(repr(err['input']))})"
            )
            if err["type"] == "extra_forbidden":
                allowed = "engine, nodes"
            problems.append(_located(file, node, loc, prefix, what, allowed))
        raise ScenarioError(problems) from None
    # Here only what no topology could have (agent-9, a node on two hosts); the scenario judges the rest.
    widest = host_problems(entries, MAX_AGENTS, max(NATS_NODES), analytics=True)
    if problems := [_located(file, node, loc, prefix, what, allowed) for loc, what, allowed in widest]:
        raise ScenarioError(problems)
    return [e.model_dump() for e in entries]


def _located(file: str, root: Any, loc: Loc, prefix: Loc, what: str, allowed: str) -> str:
    from harness.scenario.yaml_source import child

    line = root.start_mark.line + 1 if root is not None else 1
    at = root
    for part in loc:
        found = child(at, part) if at is not None else None
        if found is None:
            break
        at = found[1]
        line = at.start_mark.line + 1
    return f"{file}:{line}: {_shown((*prefix, *loc))}: {what}" + (f"; allowed: {allowed}" if allowed else "")
