"""Which implementation of docs/contract.md a scenario runs where (`topology.implementations`), and where it
cannot run (`implementations_skip`): the names allowed, validated with file:line errors like every field
(docs/implementations.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from harness.implementations import NAMES
from harness.scenario.types import Loc, _problem, _Strict, shorten

IMPLEMENTATION_FORMS = ", ".join(NAMES)
AGENT_IMPLEMENTATION_FORMS = (
    f"one implementation for every agent ({IMPLEMENTATION_FORMS}) or a list of one per agent, "
    "e.g. [netsync, net-sync-ts, net-sync-ts]"
)


def _implementation(value: Any) -> str:
    if value not in NAMES:
        raise _problem(f"got {shorten(repr(value))}", f"an implementation: {IMPLEMENTATION_FORMS}")
    return value


def _agent_implementations(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return _implementation(value)
    if not isinstance(value, list) or not value:
        raise _problem(f"got {shorten(repr(value))}", AGENT_IMPLEMENTATION_FORMS)
    for i, name in enumerate(value):
        if name not in NAMES:
            raise _problem(
                f"got {shorten(repr(name))}", f"an implementation: {IMPLEMENTATION_FORMS}", at=(i,)
            )
    return list(value)


Implementation = Annotated[str, BeforeValidator(_implementation), WithJsonSchema({"enum": list(NAMES)})]
AgentImplementations = Annotated[
    str | list[str],
    BeforeValidator(_agent_implementations),
    WithJsonSchema(
        {
            "anyOf": [{"enum": list(NAMES)}, {"type": "array", "items": {"enum": list(NAMES)}}],
            "description": AGENT_IMPLEMENTATION_FORMS,
        }
    ),
]


class Implementations(_Strict):
    """Which implementation of docs/contract.md runs each node (docs/implementations.md); a node left out
    runs --sut's, else netsync."""

    agents: AgentImplementations | None = Field(None, description=AGENT_IMPLEMENTATION_FORMS)
    orchestrator: Implementation | None = Field(None, description=IMPLEMENTATION_FORMS)
    projector: Implementation | None = Field(None, description=IMPLEMENTATION_FORMS)


SKIP_FORMS = f"a mapping of an implementation ({', '.join(NAMES)}) to why the scenario cannot run on it"


def _skips(value: Any) -> dict[str, str]:
    """implementations_skip: {implementation: reason}, each reason said in words."""
    if not isinstance(value, dict):
        raise _problem(f"got {shorten(repr(value))}", SKIP_FORMS)
    for name, reason in value.items():
        if name not in NAMES:
            raise _problem(f"{shorten(repr(name))} is no implementation", ", ".join(NAMES), at=(name,))
        if not isinstance(reason, str) or not reason.strip():
            raise _problem(
                f"got {shorten(repr(reason))}", "the reason, in words (pytest shows it)", at=(name,)
            )
    return dict(value)


Skips = Annotated[
    dict[str, str],
    BeforeValidator(_skips),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"enum": list(NAMES)},
            "additionalProperties": {"type": "string", "minLength": 1},
            "description": SKIP_FORMS,
        }
    ),
]


def skip_misfits(named: Implementations | None, skips: dict[str, str]) -> Iterator[tuple[Loc, str, str]]:
    """A skipped implementation that the topology names for a node: the scenario could never run."""
    for name in skips:
        for role in ("agents", "orchestrator", "projector"):
            value = getattr(named, role) if named is not None else None
            if value == name or (isinstance(value, list) and name in value):
                yield (
                    ("implementations_skip", name),
                    f"{name} is skipped, yet topology.implementations.{role} names it",
                    "skip an implementation the topology does not name, or name another there",
                )
