"""Scenario files (`scenarios/*.yaml`): the one pydantic model, its JSON Schema, and a loader whose every
error names the file, the line, the path inside the file and what is allowed."""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from harness.errors import HarnessError

Loc = tuple[str | int, ...]

MAX_AGENTS = 7
SERVICES = ("orchestrator", "projector", "nats", "surrealdb")
GROUPS = ("agents", "*")  # every agent; every node
LOAD_OPS = ("intent",)  # a new kind of load operation is one more name here and in the load generator


class ScenarioError(HarnessError):
    """A scenario file is unreadable or invalid; each problem reads `FILE:LINE: path: what; allowed: ...`."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _problem(what: str, allowed: str = "", at: Loc = ()) -> PydanticCustomError:
    # `at` extends pydantic's location: checks that span fields still point at the offending value.
    # `what` goes through the context, not the template, so braces in a user's value stay as written.
    return PydanticCustomError("scenario", "{what}", {"allowed": allowed, "at": at, "what": what})


# Durations

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_FORMS = "a number of seconds (1.5), or a number with a unit: 500ms, 20s, 2m, 1h, 1m30s"


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `20s`, `2m`, `1h`, `1m30s` or a plain number of seconds."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
        else:
            try:
                seconds = float(text)
            except ValueError:
                pass
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise _problem(f"not a duration: {value!r}", DURATION_FORMS)
    return seconds


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds == 0:
        raise _problem(f"got {value!r}: should be longer than 0", DURATION_FORMS)
    return seconds


def _duration_schema(minimum: str) -> dict[str, Any]:
    pattern = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h))+)\s*$"
    return {
        "anyOf": [{"type": "number", minimum: 0}, {"type": "string", "pattern": pattern}],
        "description": f"a duration: {DURATION_FORMS}",
    }


Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_duration_schema("minimum"))]
PositiveDuration = Annotated[
    float, BeforeValidator(_positive_duration), WithJsonSchema(_duration_schema("exclusiveMinimum"))
]


# Nodes and links


def agent_names(agents: int) -> list[str]:
    return [f"agent-{i}" for i in range(1, agents + 1)]


def node_names(agents: int) -> list[str]:
    """Every container of a topology with `agents` agents that a fault can name."""
    return [*agent_names(agents), *SERVICES]


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
    """The links of a topology with `agents` agents that the selector `FROM>TO` names."""
    src, dst = _split_link(selector)
    return [
        (a, b) for a, b in data_plane_links(agents) if _endpoint_names(src, a) and _endpoint_names(dst, b)
    ]


def _endpoint_names(endpoint: str, node: str) -> bool:
    return endpoint in (node, "*") or (endpoint == "agents" and node.startswith("agent-"))


def _nodes_allowed(agents: int) -> str:
    agents_text = "agent-1" if agents == 1 else f"agent-1..agent-{agents}"
    return ", ".join([agents_text, *SERVICES])


LINK_FORMS = (
    "FROM>TO, each a node or a group (agents: every agent, *: every node), "
    "e.g. agent-1>agent-2, agents>orchestrator, *>nats, projector>surrealdb"
)
LINKS_ALLOWED = (
    "agent-i>agent-j, agent-i>orchestrator, orchestrator>nats, projector>nats, projector>surrealdb"
)


def _node_error(name: str, agents: int) -> tuple[str, str] | None:
    """What is wrong with `name` as a node of a topology with `agents` agents (what, allowed), or None."""
    if name in node_names(agents):
        return None
    if name in node_names(MAX_AGENTS):
        return f"{name!r} is not in the topology (agents: {agents})", _nodes_allowed(agents)
    return f"unknown node {name!r}", _nodes_allowed(agents)


def _known_node(name: str) -> str:
    if problem := _node_error(name, MAX_AGENTS):
        raise _problem(*problem)
    return name


def _split_link(selector: str) -> tuple[str, str]:
    ends = [end.strip() for end in selector.split(">")]
    if len(ends) != 2:
        raise _problem(f"not a link selector: {selector!r}", LINK_FORMS)
    for end in ends:
        if end not in GROUPS and _node_error(end, MAX_AGENTS):
            raise _problem(f"not a link selector: {selector!r} ({end!r} is no node or group)", LINK_FORMS)
    return ends[0], ends[1]


def _link_selector(selector: str) -> str:
    src, dst = _split_link(selector)
    return f"{src}>{dst}"


def _reference_error(name: str, kind: str, agents: int) -> tuple[str, str] | None:
    if kind == "node":
        return _node_error(name, agents)
    src, dst = _split_link(name)
    for end in (src, dst):
        if end not in GROUPS and (problem := _node_error(end, agents)):
            return problem
    if not select_links(name, agents):
        return f"{name} matches no link of the topology", LINKS_ALLOWED
    return None


_NODE_PATTERN = rf"^(agent-[1-{MAX_AGENTS}]|{'|'.join(SERVICES)})$"
NodeName = Annotated[
    str, AfterValidator(_known_node), WithJsonSchema({"type": "string", "pattern": _NODE_PATTERN})
]
LinkSelector = Annotated[
    str,
    AfterValidator(_link_selector),
    WithJsonSchema({"type": "string", "pattern": r"^[^>]+>[^>]+$", "description": LINK_FORMS}),
]
# One selector may stand alone: `links: agent-1>agent-2`.
Links = Annotated[
    list[LinkSelector], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(min_length=1)
]


# Faults


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# (path inside the fault, name, "node" or "link")
References = Iterator[tuple[Loc, str, str]]


class BaseFault(_Strict):
    """What every fault has: when it starts and how long it lasts."""

    fault: str
    at: Duration = Field(description="when the fault starts, counted from the start of the load")
    for_: PositiveDuration | None = Field(
        None, alias="for", description="how long the fault lasts; absent: until the end of the load"
    )

    @property
    def stop_at(self) -> float | None:
        """When the fault is healed, or None: at the end of the load."""
        return None if self.for_ is None else self.at + self.for_

    def references(self) -> References:
        """Every node and link the fault names, to check them against the topology."""
        return iter(())


class _NodeFault(BaseFault):
    target: NodeName

    def references(self) -> References:
        yield ("target",), self.target, "node"


class _LinkFault(BaseFault):
    links: Links

    def references(self) -> References:
        for i, selector in enumerate(self.links):
            yield ("links", i), selector, "link"


PartitionMode = Literal["refuse", "blackhole"]
Direction = Literal["both", "request", "response"]
OutageMode = Literal["refuse", "blackhole", "kill", "pause"]


class PartitionFault(BaseFault):
    """Cuts the links between nodes of different `groups`, or the `links` named. A node in no group keeps
    its links. `refuse`: the proxy is disabled (connection refused); `blackhole`: bytes vanish."""

    fault: Literal["partition"]
    groups: list[list[NodeName]] | None = None
    links: Links | None = None
    mode: PartitionMode = "refuse"
    direction: Direction = Field(
        "both",
        description="blackhole only: request = bytes to the target vanish; response = its answers vanish "
        "(requests still land: e.g. a publish stored whose ack is lost)",
    )

    @model_validator(mode="after")
    def _groups_or_links(self) -> PartitionFault:
        example = "groups: [[agent-1], [agent-2, agent-3]], or links: [agent-1>agent-2]"
        if self.direction != "both" and self.mode != "blackhole":
            raise _problem(
                f"direction {self.direction} needs mode blackhole",
                "direction: both, or mode: blackhole",
                at=("direction",),
            )
        if self.groups is None and self.links is None:
            raise _problem("a partition needs groups or links", example)
        if self.groups is not None and self.links is not None:
            raise _problem("a partition takes groups or links, not both", example, at=("links",))
        if self.groups is None:
            return self
        if len(self.groups) < 2:
            raise _problem(f"{len(self.groups)} group: nothing to cut", "two or more groups", at=("groups",))
        seen: set[str] = set()
        for i, group in enumerate(self.groups):
            if not group:
                raise _problem("empty group", "one or more nodes", at=("groups", i))
            for j, node in enumerate(group):
                if node in seen:
                    raise _problem(f"{node} is in two groups", "each node in one group", at=("groups", i, j))
                seen.add(node)
        return self

    def references(self) -> References:
        for i, group in enumerate(self.groups or ()):
            for j, node in enumerate(group):
                yield ("groups", i, j), node, "node"
        for i, selector in enumerate(self.links or ()):
            yield ("links", i), selector, "link"


class IsolateFault(_NodeFault):
    """Cuts every link to and from `target`."""

    fault: Literal["isolate"]
    mode: PartitionMode = "refuse"


class OutageFault(BaseFault):
    """Makes NATS or SurrealDB unavailable: refuse or blackhole every link to it, or kill or pause it."""

    fault: Literal["outage"]
    target: Literal["nats", "surrealdb"]
    mode: OutageMode = "refuse"


class LatencyFault(_LinkFault):
    fault: Literal["latency"]
    latency: PositiveDuration
    jitter: Duration = 0.0


class BandwidthFault(_LinkFault):
    fault: Literal["bandwidth"]
    rate_kbps: int = Field(gt=0, description="KB/s, as Toxiproxy's bandwidth toxic counts")


class SlowCloseFault(_LinkFault):
    fault: Literal["slow_close"]
    delay: PositiveDuration


class ResetPeerFault(_LinkFault):
    fault: Literal["reset_peer"]
    timeout: Duration = 0.0


class SlicerFault(_LinkFault):
    fault: Literal["slicer"]
    average_size: int = Field(gt=0, description="bytes")
    size_variation: int = Field(0, ge=0, description="bytes, less than average_size")
    delay: Duration = 0.0

    @model_validator(mode="after")
    def _variation_below_average(self) -> SlicerFault:
        if self.size_variation >= self.average_size:
            raise _problem(
                f"got {self.size_variation}: not less than average_size ({self.average_size})",
                f"0..{self.average_size - 1}",
                at=("size_variation",),
            )
        return self


class LimitDataFault(_LinkFault):
    fault: Literal["limit_data"]
    bytes: int = Field(gt=0, description="the connection is closed after this many bytes")


class CrashFault(_NodeFault):
    """Kills the container at `at`, starts it again after `restart_after` (or `for`); neither: at the end."""

    fault: Literal["crash"]
    restart_after: PositiveDuration | None = None

    @model_validator(mode="after")
    def _one_length(self) -> CrashFault:
        if self.restart_after is not None and self.for_ is not None:
            raise _problem(
                "for and restart_after both given; for a crash they mean the same",
                "one of them",
                at=("restart_after",),
            )
        return self

    @property
    def stop_at(self) -> float | None:
        length = self.for_ if self.restart_after is None else self.restart_after
        return None if length is None else self.at + length


class PauseFault(_NodeFault):
    """Pauses the container (SIGSTOP for all its processes) and resumes it at the end."""

    fault: Literal["pause"]


Fault = Annotated[
    PartitionFault
    | IsolateFault
    | OutageFault
    | LatencyFault
    | BandwidthFault
    | SlowCloseFault
    | ResetPeerFault
    | SlicerFault
    | LimitDataFault
    | CrashFault
    | PauseFault,
    Field(discriminator="fault"),
]
FAULTS: dict[str, type[BaseFault]] = {
    get_args(cls.model_fields["fault"].annotation)[0]: cls for cls in get_args(get_args(Fault)[0])
}
FaultKind = Literal[tuple(FAULTS)]  # type: ignore[valid-type]


class RandomFaults(_Strict):
    """A seeded mix (Jepsen's nemesis package): every `interval` a fault of one of the `faults` kinds
    starts, on one of the `targets`, for `duration`."""

    seed: int | None = Field(None, ge=0, description="absent: the scenario's seed")
    at: Duration = 0.0
    for_: PositiveDuration | None = Field(None, alias="for", description="absent: until the end of the load")
    interval: PositiveDuration = Field(description="between the starts of two faults")
    duration: PositiveDuration = Field(description="how long each fault lasts")
    faults: list[FaultKind] = Field(min_length=1)
    targets: list[NodeName] | None = Field(None, description="absent: every node")


# The other sections


class Topology(_Strict):
    agents: int = Field(3, ge=1, le=MAX_AGENTS)
    quorum: int | None = Field(None, ge=1, description="agreements needed; absent: a majority of the agents")
    buffer_cap: int = Field(256, ge=1, description="pending-commit buffer capacity (intents)")
    intent_timeout: PositiveDuration = 0.08
    commit_timeout: PositiveDuration = 0.4
    replay_interval: PositiveDuration = 0.2

    @model_validator(mode="after")
    def _quorum_within_agents(self) -> Topology:
        if self.quorum is not None and self.quorum > self.agents:
            raise _problem(
                f"quorum {self.quorum} is more than the {self.agents} agents",
                f"1..{self.agents}",
                at=("quorum",),
            )
        return self

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else self.agents // 2 + 1


def _weights_sum_positive(mix: dict[str, float]) -> dict[str, float]:
    if not any(mix.values()):
        raise _problem("every weight is 0: no operation would run", "one weight > 0 at least")
    return mix


class Load(_Strict):
    rate: float = Field(gt=0, description="intents per second, over all clients")
    duration: PositiveDuration
    keys: int = Field(16, ge=1, description="distinct keys")
    mix: Annotated[
        dict[Literal[LOAD_OPS], Annotated[float, Field(ge=0)]],  # type: ignore[valid-type]
        AfterValidator(_weights_sum_positive),
        Field(min_length=1),
    ] = Field(default_factory=lambda: {"intent": 1.0}, description="relative weights of the operations")
    clients: int = Field(8, ge=1)
    timeout: PositiveDuration = Field(2.0, description="a client gives up (an `info` op) after this")


class Stream(_Strict):
    duplicate_window: PositiveDuration = 120.0
    max_msgs: int | None = Field(None, gt=0, description="absent: unlimited")
    max_bytes: int | None = Field(None, gt=0, description="absent: unlimited")
    max_age: PositiveDuration | None = Field(None, description="absent: unlimited")


class LatencyBudget(_Strict):
    intent_ms: float = Field(100.0, gt=0, description="p99 time to quorum, over healthy windows")
    commit_ms: float = Field(500.0, gt=0, description="p99 invoke to committed, over healthy windows")


class Recovery(_Strict):
    drained_within: PositiveDuration = Field(
        15.0, description="after the last fault, buffers are empty within"
    )


Outcome = Literal["allowed", "forbidden", "expected"]


class Expect(_Strict):
    reconciliation: Literal["exact", "none"] = Field(
        "exact", description="exact: every accepted intent once in JetStream and once in SurrealDB"
    )
    buffers: Literal["within-cap", "ignore"] = "within-cap"
    latency: LatencyBudget = Field(default_factory=LatencyBudget)
    recovery: Recovery = Field(default_factory=Recovery)
    recovery_grace: Duration = Field(5.0, description="a healthy window starts this long after a fault stops")
    stream_exactly_once: bool = True
    min_committed: int = Field(0, ge=0, description="at least this many intents end committed")
    aborts: Outcome = Field("allowed", description="expected: some intents must abort (no quorum)")
    rejections: Outcome = Field(
        "allowed", description="expected: some intents must be rejected (buffer full)"
    )


def _distinct(values: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for value in values:
        shown = _id_value(value)
        if shown in seen:
            raise _problem(f"{shown} appears twice", "each value once")
        seen.add(shown)
    return values


MATRIX_KEYS = "a dotted path to a value of the scenario, e.g. faults.0.mode, topology.agents"


class Scenario(_Strict):
    """One scenario file: the system, the load, the faults, and what must hold."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="the file's name without .yaml")
    description: str = ""
    seed: int | None = Field(None, ge=0, description="the default seed; --seed overrides it; absent: 0")
    markers: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        default_factory=list, description="pytest markers, e.g. soak"
    )
    topology: Topology = Field(default_factory=Topology)
    load: Load
    faults: list[Fault] = Field(default_factory=list)
    random: RandomFaults | None = None
    stream: Stream = Field(default_factory=Stream)
    expect: Expect = Field(default_factory=Expect)
    matrix: dict[str, Annotated[list[Any], Field(min_length=1), AfterValidator(_distinct)]] | None = Field(
        None, description=f"keys: {MATRIX_KEYS}; one parameter set per combination of the values"
    )

    _parameters: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _fits_together(self) -> Scenario:
        if problem := next(self._misfits(), None):
            at, what, allowed = problem
            raise _problem(what, allowed, at=at)
        return self

    def _misfits(self) -> Iterator[tuple[Loc, str, str]]:
        agents, end = self.topology.agents, self.load.duration
        for i, fault in enumerate(self.faults):
            here = ("faults", i, fault.fault)
            if fault.at >= end:
                yield (*here, "at"), f"{fault.at:g}s is not before the load ends", f"0s..{end:g}s (excluded)"
            for path, name, kind in fault.references():
                if problem := _reference_error(name, kind, agents):
                    yield (*here, *path), *problem
        if self.random is not None:
            if self.random.at >= end:
                yield ("random", "at"), f"{self.random.at:g}s is not before the load ends", f"0s..{end:g}s"
            for i, name in enumerate(self.random.targets or ()):
                if problem := _node_error(name, agents):
                    yield ("random", "targets", i), *problem
        for key in self.matrix or {}:
            if problem := self._matrix_key_error(key):
                yield ("matrix", key), problem, MATRIX_KEYS

    def _matrix_key_error(self, key: str) -> str | None:
        parts = key.split(".")
        if parts[0] in ("name", "matrix"):
            return f"{parts[0]} cannot vary"
        try:
            _get_path(self.model_dump(by_alias=True, exclude={"matrix"}), parts)
        except LookupError as e:
            return str(e)
        return None

    @property
    def parameters(self) -> dict[str, Any]:
        """The values a matrix or an override set, by dotted path (empty for a file as written)."""
        return dict(self._parameters)

    def resolved(self, seed: int | None = None) -> dict[str, Any]:
        """The scenario as run, as plain data for scenario.json: defaults filled in, the seed chosen (the
        given one, else the file's, else 0), and the `budgets` and `invariants` the checkers read."""
        chosen = seed if seed is not None else self.seed if self.seed is not None else 0
        data = self.model_dump(mode="json", by_alias=True, exclude={"matrix"})
        data["seed"] = chosen
        data["topology"]["quorum"] = self.topology.effective_quorum
        if data["random"] is not None and data["random"]["seed"] is None:
            data["random"]["seed"] = chosen
        if self._parameters:
            data["parameters"] = self.parameters
        data["budgets"] = {
            "intent_ms": self.expect.latency.intent_ms,
            "commit_ms": self.expect.latency.commit_ms,
            "recovery_grace_s": self.expect.recovery_grace,
        }
        data["invariants"] = {"stream_exactly_once": self.expect.stream_exactly_once}
        return data


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (what `solar-chaos schema` prints)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Scenario.model_json_schema()}


# Dotted paths into plain data (matrix keys and overrides)


def _get_path(data: Any, parts: list[str]) -> Any:
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the scenario"
        if isinstance(data, list):
            if not part.isdigit() or int(part) >= len(data):
                raise LookupError(f"{where} has {len(data)} entries, no {part!r}")
            data = data[int(part)]
        elif isinstance(data, dict):
            if part not in data:
                raise LookupError(f"{where} has no {part!r}")
            data = data[part]
        else:
            raise LookupError(f"{where} is {'not set' if data is None else 'a single value'}")
    return data


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set a value in raw file data, making the mappings on the way that the file left out."""
    *parents, last = parts
    node: Any = data
    for part, following in zip(parents, parts[1:], strict=True):
        if isinstance(node, list):
            node = node[int(part)]
        elif part in node or not following.isdigit():
            node = node.setdefault(part, {})
        else:
            raise LookupError(f"no list {part!r}")
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


# Turning pydantic's errors into the file's terms


def _unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif (
            get_origin(tp) in (Union, UnionType)
            and len(args := [a for a in get_args(tp) if a is not NoneType]) == 1
        ):
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _locate(loc: Loc) -> tuple[Loc, type[BaseModel] | None, Any]:
    """Pydantic's location as the path the user wrote (union tags dropped), the model whose field the last
    part names, and the type found there."""
    path: list[str | int] = []
    tp: Any = Scenario
    model: type[BaseModel] | None = None
    for part in loc:
        if part == "[key]":  # the error is about a mapping's key, which the path already ends with
            continue
        tp, model = _unwrap(tp), None
        if _is_model(tp):
            model = tp
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            tp = field.annotation if field else None
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        elif get_origin(tp) in (Union, UnionType) and isinstance(part, str) and part in FAULTS:
            tp = FAULTS[part]
            continue
        else:
            tp = None
        path.append(part)
    return tuple(path), model, _unwrap(tp)


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields(model: Any) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items()) if _is_model(model) else ""


def _unknown_field(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    key = str(err["loc"][-1])
    known = _fields(model).split(", ")
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""), _fields(model)


def _not_literal(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    expected = err.get("ctx", {}).get("expected", "")
    return f"got {_got(err['input'])}", ", ".join(re.findall(r"'([^']*)'", expected)) or expected


_Explain = Callable[[ErrorDetails, type[BaseModel] | None, Any], tuple[str, str]]
_EXPLAIN: dict[str, _Explain] = {
    "scenario": lambda e, m, t: (e["msg"], e["ctx"]["allowed"]),
    "missing": lambda e, m, t: ("required, but missing", ""),
    "extra_forbidden": _unknown_field,
    "literal_error": _not_literal,
    "union_tag_invalid": lambda e, m, t: (f"unknown fault {e['ctx']['tag']!r}", ", ".join(FAULTS)),
    "union_tag_not_found": lambda e, m, t: ("required, but missing", ", ".join(FAULTS)),
    "model_type": lambda e, m, t: (f"got {_got(e['input'])}, not a mapping", _fields(t)),
    "dict_type": lambda e, m, t: (f"got {_got(e['input'])}, not a mapping", ""),
    "list_type": lambda e, m, t: (f"got {_got(e['input'])}, not a list", ""),
}


def _explain(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    if explain := _EXPLAIN.get(err["type"]):
        return explain(err, model, tp)
    msg = err["msg"].replace("Input should", "should")
    return f"got {_got(err['input'])}: {msg}", ""


# Reading files

_Value = tuple[Any, yaml.Node | None]  # a substituted value and the YAML node it came from, if any


def _parse(text: str, file: str) -> tuple[yaml.Node, dict[str, Any]]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            if duplicates := list(_duplicate_keys(root, file)):
                raise ScenarioError(duplicates)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        context = ""
        if e.problem and e.context and e.context_mark:  # where the construct that broke started
            context = f" ({e.context} at line {e.context_mark.line + 1})"
        raise ScenarioError(f"{file}{line}: not valid YAML: {e.problem or e.context}{context}") from e
    except yaml.YAMLError as e:
        raise ScenarioError(f"{file}: not valid YAML: {e}") from e
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ScenarioError(f"{file}:{line}: got {_got(data)}, not a mapping; allowed: {_fields(Scenario)}")
    return root, data


def _duplicate_keys(
    node: yaml.Node, file: str, path: Loc = (), seen: set[int] | None = None
) -> Iterator[str]:
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias met again
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in first and key.tag != "tag:yaml.org,2002:merge":
                where = ".".join(map(str, (*path, name)))
                first_at = f"first at line {first[name]}"
                yield f"{file}:{line}: {where}: duplicate key ({first_at}); allowed: each key once"
            first.setdefault(name, line)
            yield from _duplicate_keys(value, file, (*path, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, file, (*path, i), seen)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node whose line to report, the node to descend into) for one step of a path, or None."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def _id_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _labels(keys: list[str]) -> dict[str, str]:
    """`mode` for `faults.0.mode`, unless two keys end alike or the end is an index."""
    ends = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: key if end.isdigit() or ends.count(end) > 1 else end for key, end in zip(keys, ends, strict=True)
    }


class _Source:
    """A scenario file as parsed: its plain data and the YAML nodes that know their lines."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = str(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ScenarioError(f"{self.file}: not UTF-8 text") from None
        except OSError as e:
            raise ScenarioError(f"{self.file}: cannot read: {e.strerror or e}") from None
        self.root, self.data = _parse(text, self.file)

    def validate(self, values: Mapping[str, _Value], parameter_set: str | None = None) -> Scenario:
        """The scenario with `values` set at their dotted paths; a parameter set drops the matrix."""
        data = copy.deepcopy(self.data)
        if parameter_set is not None:
            data.pop("matrix", None)
        problems: list[tuple[int, str]] = []  # (line, message), to report in the file's order
        for key, (value, _node) in values.items():
            try:
                _set_path(data, key.split("."), value)
            except (LookupError, ValueError, TypeError, AttributeError):
                problems.append(
                    (0, f"{self.file}: {key}: no place to set {_got(value)}; allowed: {MATRIX_KEYS}")
                )
        name = data.get("name")
        if isinstance(name, str) and name != self.path.stem:
            what = f"{name!r} is not the file's name {self.path.stem!r}"
            problems.append(self._message(("name",), what, self.path.stem, {}))
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError as e:
            problems += [
                self._from_pydantic(err, values, parameter_set) for err in e.errors(include_url=False)
            ]
        if problems:
            raise ScenarioError(message for _line, message in sorted(problems, key=lambda p: p[0]))
        scenario._parameters = {key: value for key, (value, _node) in values.items()}
        return scenario

    def parameter_sets(self, matrix: dict[str, list[Any]]) -> Iterator[tuple[str, dict[str, _Value]]]:
        keys = list(matrix)
        labels = _labels(keys)
        nodes = {key: self._matrix_nodes(key, len(matrix[key])) for key in keys}
        for choice in itertools.product(*(range(len(matrix[key])) for key in keys)):
            values = {key: (matrix[key][i], nodes[key][i]) for key, i in zip(keys, choice, strict=True)}
            yield ",".join(f"{labels[key]}={_id_value(value)}" for key, (value, _n) in values.items()), values

    def _matrix_nodes(self, key: str, count: int) -> list[yaml.Node | None]:
        found = _child(self.root, "matrix")
        found = found and _child(found[1], key)
        if found and isinstance(found[1], yaml.SequenceNode):
            return list(found[1].value)
        return [None] * count

    def _from_pydantic(
        self, err: ErrorDetails, values: Mapping[str, _Value], parameter_set: str | None
    ) -> tuple[int, str]:
        loc = tuple(err["loc"]) + tuple(err.get("ctx", {}).get("at", ()))
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += ("fault",)
        path, model, tp = _locate(loc)
        what, allowed = _explain(err, model, tp)
        if parameter_set:
            what += f" (in parameter set {parameter_set})"
        return self._message(path, what, allowed, values)

    def _message(self, path: Loc, what: str, allowed: str, values: Mapping[str, _Value]) -> tuple[int, str]:
        line = self._line(path, values)
        where = f"{self.file}:{line}" if line is not None else f"{self.file} (overridden)"
        shown = ".".join(map(str, path)) or "(top level)"
        return line or 0, f"{where}: {shown}: {what}" + (f"; allowed: {allowed}" if allowed else "")

    def _line(self, path: Loc, values: Mapping[str, _Value]) -> int | None:
        """The line of the deepest node of `path` present in the file; None for a value set from outside."""
        node: yaml.Node | None = self.root
        anchor = self.root
        for depth, part in enumerate(path):
            key = ".".join(map(str, path[: depth + 1]))
            if key in values:
                node = values[key][1]
                if node is None:
                    return None
                anchor = node
                continue
            step = _child(node, part) if node is not None else None
            if step is None:  # not in the file; a deeper part may still be a value set from outside
                node = None
                continue
            anchor, node = step
        return anchor.start_mark.line + 1


def _as_values(overrides: Mapping[str, Any] | None) -> dict[str, _Value]:
    return {key: (value, None) for key, value in (overrides or {}).items()}


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """The scenario in a file, as written (a matrix stays unexpanded), with `overrides` (dotted path ->
    value, e.g. {"topology.agents": 5}) applied. Raises ScenarioError."""
    return _Source(path).validate(_as_values(overrides))


def load_scenarios(
    path: str | Path, overrides: Mapping[str, Any] | None = None
) -> list[tuple[str, Scenario]]:
    """Every parameter set of a file as (id, scenario): one per combination of its matrix's values, with
    ids such as `mode=refuse`; a file without a matrix gives one, with the id "". Raises ScenarioError."""
    source = _Source(path)
    extra = _as_values(overrides)
    base = source.validate(extra)
    if not base.matrix:
        return [("", base)]
    sets: list[tuple[str, Scenario]] = []
    problems: list[str] = []
    for ident, values in source.parameter_sets(base.matrix):
        try:
            sets.append((ident, source.validate({**values, **extra}, ident)))
        except ScenarioError as e:
            problems += [p for p in e.problems if p not in problems]
    if problems:
        raise ScenarioError(problems)
    return sets


def _scenario_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        else:
            yield path


def validate_files(paths: Iterable[str | Path]) -> list[str]:
    """Every problem in the given scenario files (a folder stands for its *.yaml files); empty: all good."""
    problems: list[str] = []
    for path in _scenario_files(paths):
        try:
            load_scenarios(path)
        except ScenarioError as e:
            problems.extend(e.problems)
    return problems
