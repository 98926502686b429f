"""The faults of a node's wall clock, through libfaketime (docs/clock.md): skewed for a window, jumped once,
or strobing between two offsets. The targets are agents (netsync's image carries libfaketime) and, for a
skew or a jump, SurrealDB (a dynamically linked binary, given the library by the harness); NATS and
Toxiproxy are static binaries that keep the host's clock, and so do the orchestrator and the projector."""

from __future__ import annotations

import random
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.scenario.fault_base import BaseFault, References, agents_among
from harness.scenario.types import NodeName, PositiveDuration, _problem

MAX_CLOCK_OFFSET_S = 86_400  # a day: beyond it nothing in netsync or the stream reads differently
MIN_STROBE_PERIOD_S = 1.0  # each switch is read back from the agent's /healthz before the next

# Whole seconds, as libfaketime's offset file takes them; ahead of the host (+) or behind it (-).
ClockOffset = Annotated[
    int,
    Field(
        strict=True,
        ge=-MAX_CLOCK_OFFSET_S,
        le=MAX_CLOCK_OFFSET_S,
        description="whole seconds the node's wall clock is moved: + ahead of the host's, - behind",
    ),
]


class _ClockFault(BaseFault):
    targets: Annotated[
        list[NodeName], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(min_length=1)
    ] = Field(
        description="the nodes whose clock moves: agents (agent-1, ...), and `surrealdb` for a skew or a jump"
    )

    # Besides the agents, the nodes of this kind a clock fault may move (each run under libfaketime).
    other_targets: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _clocks_once(self) -> _ClockFault:
        allowed = ", ".join(("an agent, e.g. agent-2", *self.other_targets))
        for i, node in enumerate(self.targets):
            if not node.startswith("agent-") and node not in self.other_targets:
                raise _problem(
                    f"{self.fault} cannot move {node}'s clock (NATS and Toxiproxy are static binaries, the "
                    "orchestrator and the projector run without libfaketime)",
                    f"{allowed} (docs/clock.md)",
                    at=("targets", i),
                )
            if node in self.targets[:i]:
                raise _problem(f"{node} appears twice", "each node once", at=("targets", i))
        return self

    def offsets(self) -> list[int]:
        """Every offset the fault sets, for the checks below."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _moves(self) -> _ClockFault:
        if 0 in self.offsets():
            raise _problem(
                "an offset of 0 moves no clock",
                f"whole seconds, -{MAX_CLOCK_OFFSET_S}..-1 or 1..{MAX_CLOCK_OFFSET_S}",
                at=("offset",),
            )
        return self

    def references(self) -> References:
        for i, node in enumerate(self.targets):
            yield ("targets", i), node, "node"

    @classmethod
    def random_applies(cls, targets: list[str]) -> bool:
        return bool(agents_among(targets))

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        # Past netsync's 5 s of slack either way, within a minute.
        agent = rng.choice(agents_among(targets))
        return {"targets": [agent], "offset": rng.choice((-1, 1)) * rng.randint(6, 60)}


class ClockSkewFault(_ClockFault):
    """The targets' wall clocks `offset` seconds off the host's from `at`; back to the host's at the end of
    `for` (absent: at the end of the load)."""

    fault: Literal["clock-skew"]
    offset: ClockOffset
    other_targets: ClassVar[tuple[str, ...]] = ("surrealdb",)

    def offsets(self) -> list[int]:
        return [self.offset]


class ClockJumpFault(_ClockFault):
    """The targets' wall clocks jump by `offset` seconds at `at` and stay there to the end of the load (a step
    an operator or NTP made); the harness puts them back only when the scenario is over. No `for`."""

    fault: Literal["clock-jump"]
    offset: ClockOffset
    other_targets: ClassVar[tuple[str, ...]] = ("surrealdb",)

    @model_validator(mode="after")
    def _no_window(self) -> ClockJumpFault:
        if self.for_ is not None:
            raise _problem(
                "a clock jump stays until the end of the load",
                "no `for`; a window is clock-skew",
                at=("for",),
            )
        return self

    def offsets(self) -> list[int]:
        return [self.offset]

    @classmethod
    def random_applies(cls, targets: list[str]) -> bool:
        return False  # the random block's faults have a window (refused by the model, clearly)


class ClockStrobeFault(_ClockFault):
    """The targets' wall clocks alternate between `offset` and `other` (default 0: the host's) every
    `period` from `at`; back to the host's at the end of `for`."""

    fault: Literal["clock-strobe"]
    offset: ClockOffset
    other: Annotated[int, Field(strict=True, ge=-MAX_CLOCK_OFFSET_S, le=MAX_CLOCK_OFFSET_S)] = Field(
        0, description="the second offset, whole seconds (0: the host's clock)"
    )
    period: PositiveDuration = Field(
        description=f"how long each offset holds, at least {MIN_STROBE_PERIOD_S:g}s"
    )

    @model_validator(mode="after")
    def _strobes(self) -> ClockStrobeFault:
        if self.period < MIN_STROBE_PERIOD_S:
            raise _problem(
                f"a period of {self.period:g}s is shorter than the agent reads its clock's offset",
                f"at least {MIN_STROBE_PERIOD_S:g}s",
                at=("period",),
            )
        if self.other == self.offset:
            raise _problem(
                "offset and other are equal: nothing strobes", "two different offsets", at=("other",)
            )
        return self

    def offsets(self) -> list[int]:
        return [self.offset]

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {**super().random_fields(rng, targets, agents), "period": rng.randint(1, 5)}


CLOCK_FAULTS = ("clock-skew", "clock-jump", "clock-strobe")
