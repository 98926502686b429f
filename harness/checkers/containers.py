"""What happened to the system's containers, as the engine reported it (samples.jsonl's event lines,
docs/run-format.md "Containers"): each death and pause is planned when a fault of the history acts
on that container then (a crash, a pause, an outage by kill or pause), else unplanned: a panic, the
OOM killer, someone's `docker kill`. An unplanned one breaks the `unplanned_exits` expect rule (an
`expectation` anomaly naming the container, when, its exit code and whether it came back) unless the
scenario allows them; either way the figures list them, so the verdict says what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.effects import signs_of
from harness.checkers.run import Fault, Run, Sample

OUT = ("die", "pause")  # events that take a container out of service
BACK = {"die": "start", "pause": "unpause"}  # ... and the event that ends each
SLACK_S = 1.0  # the engine's and the history's clocks read one host clock, through two paths
NOT_CONTAINERS = ("refuse", "blackhole")  # outage modes that act on links, not on the container


@dataclass(frozen=True)
class Event:
    source: str
    t: float
    action: str
    exit_code: int | None = None
    oom_killed: bool = False
    planned_by: str | None = None  # the fault_id whose window explains it
    back_at: float | None = None  # when the container came back (started, unpaused)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "t": self.t, "event": self.action}
        if self.action == "die":
            out |= {"exit_code": self.exit_code, "oom_killed": self.oom_killed}
        return out | {"back_at": self.back_at}

    def describe(self) -> str:
        if self.action == "die":
            how = f"exit code {self.exit_code}" if self.exit_code is not None else "exit code unknown"
            what = f"died at t={self.t:g} ({how}{', OOM-killed' if self.oom_killed else ''})"
        else:
            what = f"was paused at t={self.t:g}"
        back = f"back at t={self.back_at:g}" if self.back_at is not None else "not back by the end"
        return f"{self.source}'s container {what} with no fault acting on it; {back}"


def acts_on(fault: Fault, source: str) -> bool:
    """Whether the fault takes `source`'s container down (not merely its links)."""
    target = fault.target if isinstance(fault.target, dict) else {}
    evidence = fault.evidence or {}
    if evidence.get("container") == source:
        return True
    nodes = target.get("nodes")  # an array of names: a string's substrings are no nodes
    if "container" in signs_of(fault.kind) and isinstance(nodes, list) and source in nodes:
        return True  # a power loss of several nodes at once
    if "disk" in signs_of(fault.kind) and target.get("node") == source:
        return True  # a process may stop on a failing disk (fail-stop), as PostgreSQL does on EIO
    return (
        "container" in signs_of(fault.kind)
        and target.get("node") == source
        and target.get("mode") not in NOT_CONTAINERS
    )


def events(run: Run) -> list[Event]:
    """Every death and pause the engine reported, with what planned it and when it ended."""
    h = run.history
    out: list[Event] = []
    for source, samples in sorted(run.samples.items()):
        lines: list[Sample] = [s for s in samples if s.container is not None]
        for i, s in enumerate(lines):
            if s.container not in OUT:
                continue
            back = next((x.t for x in lines[i + 1 :] if x.container == BACK[s.container]), None)
            planner = next(
                (
                    f.fault_id
                    for f in h.faults
                    if acts_on(f, source) and f.began - SLACK_S <= s.t <= f.until(h.end) + SLACK_S
                ),
                None,
            )
            out.append(Event(source, s.t, s.container, s.exit_code, bool(s.oom_killed), planner, back))
    return sorted(out, key=lambda e: (e.t, e.source))


def check(run: Run) -> Result:
    seen = events(run)
    unplanned = [e for e in seen if e.planned_by is None]
    figures = {
        "deaths": sum(e.action == "die" for e in seen),
        "pauses": sum(e.action == "pause" for e in seen),
        "planned": len(seen) - len(unplanned),
        "unplanned": [e.to_json() for e in unplanned],
    }
    rule = run.settings.unplanned_exits
    anomalies = (
        [Anomaly("expectation", f"unplanned_exits: {e.describe()}") for e in unplanned]
        if rule == "forbidden"
        else []
    )
    return Result(figures, anomalies)


CHECKER = Checker("containers", check, ("expectation",))
