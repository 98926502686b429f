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
from harness.shape import GROUPS, MAX_AGENTS, SERVICES, node_names, select_links

Loc = tuple[str | int, ...]


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
