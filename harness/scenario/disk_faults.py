"""The faults that act through faultfs (docs/faultfs.md): the node's data directory must be on it
(topology.disk). A power loss of one or several nodes, and EIO, ENOSPC or slow fsyncs for a window."""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.scenario.fault_base import BaseFault, References, _NodeFault
from harness.scenario.types import NodeName, PositiveDuration, _problem


class _DiskFault(_NodeFault):
    """A fault of a node's data directory on faultfs (topology.disk; docs/faultfs.md)."""

    path: str = Field(
        "/",
        pattern=r"^/",
        max_length=1000,
        description="the part of the data directory it acts on (whole path components), e.g. /jetstream",
    )


DiskOp = Literal["write", "fsync", "read", "all"]


class DiskErrorFault(_DiskFault):
    """EIO on `op` (write, fsync, read, all) for files under `path` of the node's data directory."""

    fault: Literal["disk-error"]
    op: DiskOp = "fsync"

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"target": rng.choice(targets), "op": rng.choice(["write", "fsync", "all"])}


class DiskFullFault(_DiskFault):
    """ENOSPC on every write that would grow a file under `path`."""

    fault: Literal["disk-full"]


class DiskSlowFault(_DiskFault):
    """Every fsync under `path` takes `delay` longer."""

    fault: Literal["disk-slow"]
    delay: PositiveDuration = Field(description="added to each fsync")

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"target": rng.choice(targets), "delay": rng.randint(20, 500) / 1000}


class PowerLossFault(BaseFault):
    """Power lost at `at` on every node of `targets` at once: each is SIGKILLed and its unsynced writes are
    dropped (faultfs's lose); power comes back after `for` (default 1 s): each starts again and is waited
    for until ready."""

    fault: Literal["power-loss"]
    targets: Annotated[
        list[NodeName], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(min_length=1)
    ]

    @model_validator(mode="after")
    def _distinct_targets(self) -> PowerLossFault:
        for i, node in enumerate(self.targets):
            if node in self.targets[:i]:
                raise _problem(f"{node} appears twice", "each node once", at=("targets", i))
        return self

    @property
    def stop_at(self) -> float | None:
        return self.at + (1.0 if self.for_ is None else self.for_)

    def references(self) -> References:
        for i, node in enumerate(self.targets):
            yield ("targets", i), node, "node"

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"targets": [rng.choice(targets)]}
