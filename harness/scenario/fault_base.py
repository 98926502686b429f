"""What every fault kind shares: when it starts and how long it lasts, the nodes and links it names (checked
against the topology), and the hooks of the random nemesis. The kinds are in `faults` (links and
processes) and `disk_faults` (faultfs)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from harness.scenario.types import Duration, Links, Loc, NodeName, PositiveDuration, _Strict

# (path inside the fault, name, "node" or "link")
References = Iterator[tuple[Loc, str, str]]


def agents_among(targets: list[str]) -> list[str]:
    """The agents among a random block's targets: what the kinds that act on agents alone may draw."""
    return [t for t in targets if t.startswith("agent-")]


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

    # The random nemesis: from the allowed targets to the fields of a fault of this kind.

    @classmethod
    def random_applies(cls, targets: list[str]) -> bool:
        """Can a fault of this kind act on these targets?"""
        return bool(targets)

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        """The fields (beyond fault, at and for) of a random fault of this kind on one of `targets`."""
        raise NotImplementedError(f"{cls.__name__} has no random maker")


class _NodeFault(BaseFault):
    target: NodeName

    def references(self) -> References:
        yield ("target",), self.target, "node"

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"target": rng.choice(targets)}


class _LinkFault(BaseFault):
    links: Links

    def references(self) -> References:
        for i, selector in enumerate(self.links):
            yield ("links", i), selector, "link"
