"""The scenario model's building blocks: durations, node names and link selectors, and the error that
names what is wrong in a file."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from harness.errors import HarnessError
from harness.shape import (
    ANALYTICS,
    CLUSTER_TARGETS,
    GROUPS,
    MAX_AGENTS,
    NATS_NODES,
    SERVICES,
    node_names,
    select_links,
)

Loc = tuple[str | int, ...]

# Limits, in one place (docs/scenarios.md states each, and a test holds the two together). The file's
# shape is bounded so that `validate` judges any file in bounded time and memory; the numbers are bounded
# by what takes them: NATS and Toxiproxy read 64-bit integers, netsync and Toxiproxy count milliseconds.

MAX_FILE_BYTES = 1_048_576  # a shipped scenario is under 2 KB
MAX_DEPTH = 16  # mappings and lists inside each other; a scenario needs 6
MAX_NODES = 5_000  # keys and values, an alias counted at every use; a scenario needs about 200
MAX_TEXT_CHARS = 10_000  # one key or value
MAX_NUMBER_CHARS = 40  # one number as written: 19 digits fill a 64-bit integer
MAX_PARAMETER_SETS = 256  # of a matrix
MAX_EXPANDED_NODES = 100_000  # keys and values times parameter sets: what validating a matrix reads
MAX_PLANNED_FAULTS = 1_000  # of one parameter set: its faults and what its random block plans
MAX_FILE_PLANNED_FAULTS = 10_000  # of all the parameter sets of a file together
INT64_MAX = 2**63 - 1  # NATS's max_msgs and max_bytes, Toxiproxy's sizes, seeds
MAX_DURATION_S = 30 * 86_400.0  # any duration; NATS counts max_age in int64 nanoseconds
MIN_DURATION_S = 0.001  # a duration that must be positive: netsync and Toxiproxy count milliseconds
MIN_STREAM_WINDOW_S = 0.1  # NATS refuses a max_age or duplicate_window under 100 ms
MAX_RATE = 10_000  # intents per second
MAX_KEYS = 1_000_000
MAX_CLIENTS = 1_000  # one connection (asyncio) or Locust user each
MAX_BUFFER_CAP = 1_000_000
MAX_BUDGET_MS = 3_600_000  # a latency budget: one hour
# pytest's own markers, and pytest-asyncio's: a scenario that named one would skip itself, expect to fail,
# or change how its test runs, unseen by whoever runs it.
RESERVED_MARKERS = ("skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "asyncio")

# Each limit as docs/scenarios.md writes it.
LIMITS = {
    "MAX_FILE_BYTES": f"{MAX_FILE_BYTES:,} bytes",
    "MAX_DEPTH": f"{MAX_DEPTH} levels",
    "MAX_NODES": f"{MAX_NODES:,} keys and values",
    "MAX_TEXT_CHARS": f"{MAX_TEXT_CHARS:,} characters",
    "MAX_NUMBER_CHARS": f"{MAX_NUMBER_CHARS} characters",
    "MAX_PARAMETER_SETS": f"{MAX_PARAMETER_SETS} parameter sets",
    "MAX_EXPANDED_NODES": f"{MAX_EXPANDED_NODES:,} keys and values",
    "MAX_PLANNED_FAULTS": f"{MAX_PLANNED_FAULTS:,} faults",
    "MAX_FILE_PLANNED_FAULTS": f"{MAX_FILE_PLANNED_FAULTS:,} faults",
    "INT64_MAX": f"{INT64_MAX}",
    "MAX_DURATION_S": "720h (30 days)",
    "MIN_DURATION_S": "1ms",
    "MIN_STREAM_WINDOW_S": "100ms",
    "MAX_RATE": f"{MAX_RATE:,} intents per second",
    "MAX_KEYS": f"{MAX_KEYS:,} keys",
    "MAX_CLIENTS": f"{MAX_CLIENTS:,} clients",
    "MAX_BUFFER_CAP": f"{MAX_BUFFER_CAP:,} intents",
    "MAX_BUDGET_MS": f"{MAX_BUDGET_MS:,} ms",
    "RESERVED_MARKERS": ", ".join(f"`{m}`" for m in RESERVED_MARKERS),
}


def shorten(text: str, keep: int = 40) -> str:
    """A key or value as an error shows it: a long one cut, with its length."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text):,} characters)"


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
DURATION_FORMS = (
    "a number of seconds (1.5), or a number with a unit: 500ms, 20s, 2m, 1h, 1m30s; at most 720h (30 days)"
)


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `20s`, `2m`, `1h`, `1m30s` or a plain number of seconds."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and len(text := value.strip()) <= MAX_NUMBER_CHARS:
        # (a long text is no duration; the pattern would take quadratic time to say so)
        if _DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
        else:
            try:
                seconds = float(text)
            except ValueError:
                pass
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise _problem(f"not a duration: {shorten(repr(value))}", DURATION_FORMS)
    if seconds > MAX_DURATION_S:
        raise _problem(f"got {shorten(repr(value))}: longer than 720h (30 days)", DURATION_FORMS)
    return seconds


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds == 0:
        raise _problem(f"got {value!r}: should be longer than 0", f"1ms or more: {DURATION_FORMS}")
    if seconds < MIN_DURATION_S:
        raise _problem(f"got {value!r}: shorter than 1ms", f"1ms or more: {DURATION_FORMS}")
    return seconds


def _duration_schema(minimum: float) -> dict[str, Any]:
    pattern = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h))+)\s*$"
    return {
        "anyOf": [
            {"type": "number", "minimum": minimum, "maximum": MAX_DURATION_S},
            {"type": "string", "pattern": pattern},
        ],
        "description": f"a duration: {DURATION_FORMS}",
    }


Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_duration_schema(0))]
PositiveDuration = Annotated[
    float, BeforeValidator(_positive_duration), WithJsonSchema(_duration_schema(MIN_DURATION_S))
]


# Nodes and links


def _nodes_allowed(agents: int, nats: int = 1, analytics: bool = False) -> str:
    agents_text = "agent-1" if agents == 1 else f"agent-1..agent-{agents}"
    nats_text = "nats" if nats == 1 else f"nats-1..nats-{nats}, {', '.join(CLUSTER_TARGETS)}"
    extra = [ANALYTICS] if analytics else []
    return ", ".join([agents_text, "orchestrator", "projector", *extra, nats_text, "surrealdb"])


LINK_FORMS = (
    "FROM>TO, each a node or a group (agents: every agent, *: every node, nats: every NATS node), "
    "e.g. agent-1>agent-2, agents>orchestrator, *>nats, projector>surrealdb, nats-1>nats-2"
)
LINKS_ALLOWED = (
    "agent-i>agent-j, agent-i>orchestrator, orchestrator>nats, projector>nats, projector>surrealdb; "
    "in a NATS cluster orchestrator>nats-i, projector>nats-i, nats-i>nats-j; with topology.analytics "
    "analytics>surrealdb, analytics>nats"
)
# Every node name some topology has: the largest, and both spellings of NATS (alone, or in a cluster).
_ANY_NODE = (
    frozenset(node_names(MAX_AGENTS, analytics=True))
    | frozenset(node_names(MAX_AGENTS, max(NATS_NODES)))
    | frozenset(CLUSTER_TARGETS)
)


def _node_error(name: str, agents: int, nats: int = 1, analytics: bool = False) -> tuple[str, str] | None:
    """What is wrong with `name` as a node of a topology with `agents` agents and `nats` NATS nodes
    (and the analytics node or not) (what, allowed), or None."""
    if name in node_names(agents, nats, analytics) or (name in CLUSTER_TARGETS and nats != 1):
        return None
    if name == ANALYTICS:
        return "analytics is not in the topology (topology.analytics: false)", (
            "topology.analytics: true, or a node: " + _nodes_allowed(agents, nats)
        )
    if name in CLUSTER_TARGETS:
        what = f"{name} follows a NATS cluster at run time; NATS is one server here (topology.nats.nodes: 1)"
        return what, "topology.nats.nodes 3 or 5, or a node: " + _nodes_allowed(agents, nats)
    if name in _ANY_NODE:
        shape = f"agents: {agents}" + (f", nats nodes: {nats}" if nats != 1 else "")
        if name.startswith("nats-") and nats == 1:
            cluster = "NATS is one server, nats: topology.nats.nodes 3 or 5 makes a cluster"
            return f"{name!r} is not in the topology ({cluster})", _nodes_allowed(agents, nats)
        if name == "nats" and nats != 1:
            return f"'nats' is a cluster of {nats} nodes ({shape}): name one", _nodes_allowed(agents, nats)
        return f"{name!r} is not in the topology ({shape})", _nodes_allowed(agents, nats)
    return f"unknown node {name!r}", _nodes_allowed(agents, nats)


def _known_node(name: str) -> str:
    if name not in _ANY_NODE:
        allowed = _nodes_allowed(MAX_AGENTS).replace(
            "nats", f"nats (nats-1..nats-{max(NATS_NODES)}, {', '.join(CLUSTER_TARGETS)} in a cluster)"
        )
        raise _problem(f"unknown node {name!r}", allowed)
    return name


def _split_link(selector: str) -> tuple[str, str]:
    ends = [end.strip() for end in selector.split(">")]
    if len(ends) != 2:
        raise _problem(f"not a link selector: {selector!r}", LINK_FORMS)
    for end in ends:
        if end in CLUSTER_TARGETS:
            raise _problem(
                f"{selector!r}: {end} is resolved when a fault starts, and only for a crash, pause, isolate "
                "or power-loss; a link selector names nodes",
                "nats-i>nats-j for a route, or isolate with target " + end,
            )
        if end not in GROUPS and end not in _ANY_NODE:
            raise _problem(f"not a link selector: {selector!r} ({end!r} is no node or group)", LINK_FORMS)
    return ends[0], ends[1]


def _link_selector(selector: str) -> str:
    src, dst = _split_link(selector)
    return f"{src}>{dst}"


def _reference_error(
    name: str, kind: str, agents: int, nats: int = 1, analytics: bool = False
) -> tuple[str, str] | None:
    if kind == "node":
        return _node_error(name, agents, nats, analytics)
    src, dst = _split_link(name)
    for end in (src, dst):
        if end in GROUPS or (end == "nats" and nats != 1):  # a cluster's nodes, as a group
            continue
        if problem := _node_error(end, agents, nats, analytics):
            return problem
    if not select_links(name, agents, nats, analytics):
        return f"{name} matches no link of the topology", LINKS_ALLOWED
    return None


_NAMED_NODES = "|".join((*SERVICES, ANALYTICS, *CLUSTER_TARGETS))
_NODE_PATTERN = rf"^(agent-[1-{MAX_AGENTS}]|nats-[1-{max(NATS_NODES)}]|{_NAMED_NODES})$"
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


class _Strict(BaseModel):
    # strict: `agents: yes` is no 1 and `keys: "16"` no 16; no inf or nan for any number
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
