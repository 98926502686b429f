"""The scenario's `random` block (Jepsen's nemesis package): which kinds it draws, on which targets, and
when; harness.schedule makes the faults from it."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from harness.scenario import cluster_targets
from harness.scenario.faults import FAULTS, FaultKind
from harness.scenario.types import INT64_MAX, Duration, NodeName, PositiveDuration, _Strict
from harness.shape import node_names


class RandomFaults(_Strict):
    """A seeded mix (Jepsen's nemesis package): every `interval` a fault of one of the `faults` kinds
    starts, on one of the `targets`, for `duration`."""

    seed: int | None = Field(None, ge=0, le=INT64_MAX, description="absent: the scenario's seed")
    at: Duration = 0.0
    for_: PositiveDuration | None = Field(None, alias="for", description="absent: until the end of the load")
    interval: PositiveDuration = Field(description="between the starts of two faults")
    duration: PositiveDuration = Field(description="how long each fault lasts")
    faults: list[FaultKind] = Field(min_length=1)
    targets: list[NodeName] | None = Field(None, description="absent: every node")

    def kinds(self, agents: int, nats: int = 1) -> list[str]:
        """The kinds of `faults` that can act on the block's targets in a topology of `agents` agents and
        `nats` NATS nodes."""
        return [k for k in self.faults if FAULTS[k].random_applies(self.targets_for(k, agents, nats))]

    def chosen_targets(self, agents: int, nats: int = 1) -> list[str]:
        return list(dict.fromkeys(self.targets or node_names(agents, nats)))

    def targets_for(self, kind: str, agents: int, nats: int = 1) -> list[str]:
        """The targets a fault of `kind` is drawn on: a cluster's roles (nats-leader...) only for the kinds
        that follow the cluster."""
        targets = self.chosen_targets(agents, nats)
        if kind in cluster_targets.FOLLOWING_KINDS:
            return targets
        return [t for t in targets if not cluster_targets.is_cluster_target(t)]

    def windows(self, end: float) -> Iterator[tuple[float, float]]:
        """(start, length) of each fault the block plans in a load ending at `end`: every `interval`,
        never before the previous one stopped, inside the block's window and the load."""
        window_end = end if self.for_ is None else min(self.at + self.for_, end)
        t = self.at
        while t < window_end:
            length = round(min(self.duration, window_end - t), 6)
            if length <= 0:  # what is left of the window rounds to nothing
                return
            yield round(t, 6), length
            t = round(max(t + self.interval, t + length), 6)
