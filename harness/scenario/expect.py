"""The scenario's expectations (`expect:`): what a run must show to pass (reconciliation, buffers, change
capture gaps, latency budgets, recovery, outcomes), and `expected_failures`, the anomalies a parameter set
is known to end with."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from harness.scenario.types import (
    INT64_MAX,
    MAX_BUDGET_MS,
    Duration,
    PositiveDuration,
    _problem,
    _Strict,
    shorten,
)

COMMITTED_FORMS = (
    "a count of intents (15000), or a share of those the load sends: 50% (0% to 100%), which scales "
    "with --soak-duration"
)
_SHARE = re.compile(r"(\d{1,3}(?:\.\d{1,6})?)\s*%")


def _count_or_share(value: object) -> int | str:
    """An intent count (0..2^63-1), or a share of the load such as `50%`, kept as text ("50%")."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= INT64_MAX:
            return value
    elif isinstance(value, str) and (m := _SHARE.fullmatch(value.strip())) and float(m[1]) <= 100:
        return f"{float(m[1]):g}%"
    raise _problem(f"got {shorten(repr(value))}", COMMITTED_FORMS)


CountOrShare = Annotated[
    int | str,
    BeforeValidator(_count_or_share),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
                {"type": "string", "pattern": r"^\s*\d{1,3}(\.\d{1,6})?\s*%\s*$"},
            ],
            "description": COMMITTED_FORMS,
        }
    ),
]


def committed_floor(min_committed: int | str, intents: int) -> int:
    """The intents that must end committed: the count as written, or its share of `intents` (rounded
    up, so 50% of 3 is 2)."""
    if isinstance(min_committed, int):
        return min_committed
    return math.ceil(intents * float(min_committed.rstrip("%")) / 100 - 1e-9)


class LatencyBudget(_Strict):
    intent_ms: float = Field(
        100.0, gt=0, le=MAX_BUDGET_MS, description="p99 time to quorum, over healthy windows"
    )
    commit_ms: float = Field(
        500.0, gt=0, le=MAX_BUDGET_MS, description="p99 invoke to committed, over healthy windows"
    )


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
    cdc_gaps: Literal["lost", "expected"] = Field(
        "lost",
        description="lost: a store row the analytics node never applied is cdc-lost, reported or not; "
        "expected (the gap is the point): one it reported in a gap line naming its cid is counted, not "
        "cdc-lost, and at least one such gap must be reported",
    )
    latency: LatencyBudget = Field(default_factory=LatencyBudget)
    recovery: Recovery = Field(default_factory=Recovery)
    recovery_grace: Duration = Field(5.0, description="a healthy window starts this long after a fault stops")
    stream_exactly_once: bool = True
    min_committed: CountOrShare = Field(
        0,
        description="at least this many intents end committed (at most the load's), or this share of "
        "the intents the load sends (50%)",
    )
    aborts: Outcome = Field("allowed", description="expected: some intents must abort (no quorum)")
    rejections: Outcome = Field(
        "allowed", description="expected: some intents must be rejected (buffer full)"
    )
    unplanned_exits: Literal["forbidden", "allowed"] = Field(
        "forbidden",
        description="a container of the system that dies or is paused with no fault acting on it fails "
        "the run (forbidden), or is only reported (allowed)",
    )


class ExpectedFailure(_Strict):
    """A parameter set whose verdict is known to be invalid with these anomalies: the bug the scenario
    exists to find. pytest marks it xfail(strict=True): it fails if the verdict turns valid, or invalid
    without one of these anomalies."""

    when: dict[str, Any] = Field(
        default_factory=dict, description="matrix key -> value; absent or {}: every parameter set"
    )
    anomalies: list[Annotated[str, Field(pattern=r"^[a-z][a-z-]*$")]] = Field(
        min_length=1, description="anomaly kinds the verdict must hold, e.g. lost"
    )
    reason: str = Field(min_length=1, description="why: the bug, and where it is described")
