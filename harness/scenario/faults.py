"""The faults a scenario can name: one pydantic model per kind, each with its random maker (what the
`random` block draws for it), and the registry of every kind. A new kind is one class (here for links and
processes, in `disk_faults` for faultfs, in `clock_faults` for agents' clocks),
one line in `FAULT_TYPES`, and its handler in `harness.nemesis`."""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Field, model_validator

from harness.scenario.clock_faults import ClockJumpFault, ClockSkewFault, ClockStrobeFault
from harness.scenario.disk_faults import (
    DiskErrorFault,
    DiskFullFault,
    DiskSlowFault,
    PowerLossFault,
)
from harness.scenario.fault_base import BaseFault, References, _LinkFault, _NodeFault, agents_among
from harness.scenario.types import (
    INT64_MAX,
    Duration,
    Links,
    NodeName,
    PositiveDuration,
    _problem,
)
from harness.shape import data_plane_links


def _links_of(rng: random.Random, targets: list[str], agents: int, nats: int = 1) -> list[str]:
    """Every link to or from one target: the node seen as slow, lossy or flaky by everyone it talks to."""
    node = rng.choice(targets)
    return [f"{a}>{b}" for a, b in data_plane_links(agents, nats) if node in (a, b)]


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

    @staticmethod
    def _random_pool(targets: list[str]) -> list[str]:
        # Splitting the agents is the partition that matters (quorum); services only when too few agents.
        agents = [t for t in targets if t.startswith("agent-")]
        return agents if len(agents) >= 2 else targets

    @classmethod
    def random_applies(cls, targets: list[str]) -> bool:
        return len(cls._random_pool(targets)) >= 2

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        pool = cls._random_pool(targets)
        shuffled = rng.sample(pool, len(pool))
        minority = rng.randint(1, max(1, (len(pool) - 1) // 2))
        groups = [sorted(shuffled[:minority]), sorted(shuffled[minority:])]
        return {"groups": groups, "mode": rng.choice(["refuse", "blackhole"])}


class IsolateFault(_NodeFault):
    """Cuts every link to and from `target`."""

    fault: Literal["isolate"]
    mode: PartitionMode = "refuse"

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"target": rng.choice(targets), "mode": rng.choice(["refuse", "blackhole"])}


class OutageFault(BaseFault):
    """Makes NATS or SurrealDB unavailable: refuse or blackhole every link to it, or kill or pause it."""

    fault: Literal["outage"]
    target: Literal["nats", "surrealdb"]
    mode: OutageMode = "refuse"

    @staticmethod
    def _random_services(targets: list[str]) -> list[str]:
        return [t for t in targets if t in ("nats", "surrealdb")]

    @classmethod
    def random_applies(cls, targets: list[str]) -> bool:
        return bool(cls._random_services(targets))

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {
            "target": rng.choice(cls._random_services(targets)),
            "mode": rng.choice(["refuse", "blackhole", "kill", "pause"]),
        }


class LatencyFault(_LinkFault):
    fault: Literal["latency"]
    latency: PositiveDuration
    jitter: Duration = 0.0

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        latency_ms = rng.randint(50, 300)
        jitter_ms = rng.randint(0, latency_ms // 4)
        return {
            "links": _links_of(rng, targets, agents, nats),
            "latency": latency_ms / 1000,
            "jitter": jitter_ms / 1000,
        }


class BandwidthFault(_LinkFault):
    fault: Literal["bandwidth"]
    rate_kbps: int = Field(gt=0, le=INT64_MAX, description="KB/s, as Toxiproxy's bandwidth toxic counts")

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"links": _links_of(rng, targets, agents, nats), "rate_kbps": rng.randint(16, 256)}


class SlowCloseFault(_LinkFault):
    fault: Literal["slow_close"]
    delay: PositiveDuration

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"links": _links_of(rng, targets, agents, nats), "delay": rng.randint(100, 2000) / 1000}


class ResetPeerFault(_LinkFault):
    fault: Literal["reset_peer"]
    timeout: Duration = 0.0

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"links": _links_of(rng, targets, agents, nats), "timeout": rng.randint(0, 1000) / 1000}


class SlicerFault(_LinkFault):
    fault: Literal["slicer"]
    average_size: int = Field(gt=0, le=INT64_MAX, description="bytes")
    size_variation: int = Field(0, ge=0, le=INT64_MAX, description="bytes, less than average_size")
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

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        average = rng.randint(16, 256)
        return {
            "links": _links_of(rng, targets, agents, nats),
            "average_size": average,
            "size_variation": rng.randint(0, average // 2),
            "delay": rng.randint(0, 1000) / 1_000_000,  # Toxiproxy's slicer delays in microseconds
        }


class LimitDataFault(_LinkFault):
    fault: Literal["limit_data"]
    bytes: int = Field(gt=0, le=INT64_MAX, description="the connection is closed after this many bytes")

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"links": _links_of(rng, targets, agents, nats), "bytes": rng.randint(1024, 65536)}


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


class RepeatFault(_NodeFault):
    """Posts again to the agent `target`, at `at`, every intent it has answered so far (same cid, key and
    value), as a client retrying after a lost answer would; `for` (default 1 s) is the window it is judged
    in. The contract says each gets its first answer again, never a second intent: an aborted one that
    lands is a phantom."""

    fault: Literal["repeat"]

    @model_validator(mode="after")
    def _agent_only(self) -> RepeatFault:
        if not self.target.startswith("agent-"):
            raise _problem(f"{self.target} takes no intents", "an agent, e.g. agent-2", at=("target",))
        return self

    @property
    def stop_at(self) -> float | None:
        return self.at + (1.0 if self.for_ is None else self.for_)

    @classmethod
    def random_applies(cls, targets: list[str]) -> bool:
        return bool(agents_among(targets))

    @classmethod
    def random_fields(
        cls, rng: random.Random, targets: list[str], agents: int, nats: int = 1
    ) -> dict[str, Any]:
        return {"target": rng.choice(agents_among(targets))}


# Every kind, once: the union the model validates against, the registry and the schema follow from it.
FAULT_TYPES: tuple[type[BaseFault], ...] = (
    PartitionFault,
    IsolateFault,
    OutageFault,
    LatencyFault,
    BandwidthFault,
    SlowCloseFault,
    ResetPeerFault,
    SlicerFault,
    LimitDataFault,
    CrashFault,
    PauseFault,
    RepeatFault,
    PowerLossFault,
    DiskErrorFault,
    DiskFullFault,
    DiskSlowFault,
    ClockSkewFault,
    ClockJumpFault,
    ClockStrobeFault,
)
# Union[tuple] is the one spelling of a union over a runtime tuple (ruff's `X | Y` rewrite would drop it).
Fault = Annotated[Union[FAULT_TYPES], Field(discriminator="fault")]  # type: ignore[valid-type]  # noqa: UP007


def _kind(cls: type[BaseFault]) -> str:
    return get_args(cls.model_fields["fault"].annotation)[0]


FAULTS: dict[str, type[BaseFault]] = {_kind(cls): cls for cls in FAULT_TYPES}
# The kinds that act through faultfs: their targets' data must be on it (topology.disk).
DISK_FAULTS = ("power-loss", "disk-error", "disk-full", "disk-slow")
FaultKind = Literal[tuple(FAULTS)]  # type: ignore[valid-type]
for _cls in FAULT_TYPES:  # a kind the random block could draw but not make
    if _cls.random_fields.__func__ is BaseFault.random_fields.__func__:  # type: ignore[attr-defined]
        raise ImportError(f"{_cls.__name__} has no random_fields: the random block could not make it")
