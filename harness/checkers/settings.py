"""What scenario.json says the checkers must hold the run to (docs/run-format.md, "scenario.json"):
budgets, invariants, the configured buffer cap, stream limits and the `expect` rules, with the
format's defaults. A field of the wrong type names the file, the field and what is allowed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import store
from harness.store import RunDirError


@dataclass(frozen=True)
class Settings:
    """The expectations scenario.json carries (docs/run-format.md), with the format's defaults."""

    intent_ms: float = 100.0
    commit_ms: float = 500.0
    grace_s: float = 5.0
    stream_exactly_once: bool = True
    buffer_cap: int | None = None
    max_msgs: int | None = None
    max_bytes: int | None = None
    max_age_s: float | None = None
    min_committed: int = 0
    aborts: str = "allowed"
    rejections: str = "allowed"
    drained_within_s: float = 15.0
    unplanned_exits: str = "forbidden"  # a container dying or paused with no fault acting on it
    horizon_s: float | None = None
    reconciliation: str = "exact"  # "none": the scenario waives the reconciliation anomalies
    buffers: str = "within-cap"  # "ignore": the scenario waives the buffer anomalies
    cdc_gaps: str = "lost"  # "expected": a change the analytics consumer reported as a gap is not cdc-lost
    analytics: bool = False  # topology.analytics: the system had an analytics node
    # scenario.json's `analytics` (solar-chaos's own): why the node could not be read, when it could not
    analytics_uncollected: str | None = None

    @property
    def stream_limited(self) -> bool:
        return any(limit is not None for limit in (self.max_msgs, self.max_bytes, self.max_age_s))


_RULES = ("allowed", "forbidden", "expected")


def _finite_number(value: Any) -> bool:
    """A JSON number a float holds: `true` is not 1, and neither Infinity (which Python's json reads) nor
    an integer past 64 bits is a budget or a count."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and abs(value) < 1 << 63


def read_settings(path: Path) -> Settings:
    data = store.read_json(path, "the resolved scenario, a JSON object")
    return _settings(path, data)


def _settings(path: Path, data: dict[str, Any]) -> Settings:
    def section(name: str) -> dict[str, Any]:
        value = data.get(name) or {}
        if not isinstance(value, dict):
            raise RunDirError(path, f"{name}: got {type(value).__name__}", expected="a JSON object")
        return value

    def number(sec: str, key: str, default: Any, kind: type = float, optional: bool = False) -> Any:
        value = section(sec).get(key, default)
        if value is None and optional:
            return None
        if not _finite_number(value) or value < 0 or (kind is int and value != int(value)):
            got = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            raise RunDirError(path, f"{sec}.{key}: got {got}", expected=f"a {kind.__name__} >= 0")
        return kind(value)

    def rule(key: str, default: str = "allowed", allowed: tuple[str, ...] = _RULES) -> str:
        value = section("expect").get(key, default)
        if value not in allowed:
            raise RunDirError(path, f"expect.{key}: got {value!r}", expected=" or ".join(allowed))
        return value

    exactly_once = section("invariants").get("stream_exactly_once", True)
    if not isinstance(exactly_once, bool):
        raise RunDirError(
            path, f"invariants.stream_exactly_once: got {exactly_once!r}", expected="true or false"
        )
    load = section("load")
    duration = load.get("duration")
    horizon = float(duration) if _finite_number(duration) and duration >= 0 else None
    analytics = section("topology").get("analytics", False)
    if not isinstance(analytics, bool):
        raise RunDirError(path, f"topology.analytics: got {analytics!r}", expected="true or false")
    return Settings(
        intent_ms=number("budgets", "intent_ms", 100.0),
        commit_ms=number("budgets", "commit_ms", 500.0),
        grace_s=number("budgets", "recovery_grace_s", 5.0),
        stream_exactly_once=exactly_once,
        buffer_cap=number("topology", "buffer_cap", None, int, optional=True),
        max_msgs=number("stream", "max_msgs", None, int, optional=True),
        max_bytes=number("stream", "max_bytes", None, int, optional=True),
        max_age_s=number("stream", "max_age_s", None, float, optional=True),
        min_committed=number("expect", "min_committed", 0, int),
        aborts=rule("aborts"),
        rejections=rule("rejections"),
        drained_within_s=number("expect", "drained_within_s", 15.0),
        unplanned_exits=rule("unplanned_exits", "forbidden", ("forbidden", "allowed")),
        horizon_s=horizon,
        reconciliation=str(section("expect").get("reconciliation", "exact")),
        buffers=str(section("expect").get("buffers", "within-cap")),
        cdc_gaps=rule("cdc_gaps", "lost", ("lost", "expected")),
        analytics=analytics,
        analytics_uncollected=_uncollected(path, section("analytics")),
    )


def _uncollected(path: Path, collection: dict[str, Any]) -> str | None:
    """scenario.json's `analytics` object, written by the collection: `collected: false` with its
    `detail` when the node could not be read (None when it was, or the field is absent)."""
    collected = collection.get("collected", True)
    detail = collection.get("detail", "")
    if not isinstance(collected, bool) or not isinstance(detail, str):
        got = f"collected {collected!r}, detail {detail!r}"[:80]
        raise RunDirError(
            path, f"analytics: got {got}", expected="collected (true or false) and detail (a string)"
        )
    return None if collected else detail or "the analytics node could not be read"
