"""What a checker is: a name and a pure function of a run directory's facts that returns validity,
figures and anomalies (Jepsen's checker protocol)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.checkers.run import Run
from harness.checkers.settings import Settings

Validity = bool | Literal["unknown"]


@dataclass(frozen=True)
class Anomaly:
    """One broken promise, named as in docs/run-format.md's table of anomaly kinds."""

    kind: str
    detail: str
    cid: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.cid is not None:
            out["cid"] = self.cid
        out["detail"] = self.detail
        return out


@dataclass
class Result:
    """What one checker concluded: valid when it found no anomaly; figures are its measurements."""

    figures: dict[str, Any] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    valid: Validity | None = None  # None: valid unless anomalies were found
    error: str | None = None

    @property
    def validity(self) -> Validity:
        if self.valid is not None:
            return self.valid
        return not self.anomalies


def _never(settings: Settings) -> str | None:
    return None


@dataclass(frozen=True)
class Checker:
    name: str
    check: Callable[[Run], Result]
    kinds: tuple[str, ...]  # the anomaly kinds it can report
    # The scenario's own word that this check's anomalies do not count (None: they do).
    waived: Callable[[Settings], str | None] = _never


def merge(validities: list[Validity]) -> Validity:
    """Any check that could not judge (a malformed file, a failed checker) makes the whole unknown:
    the run was not fully checked. Else any false makes it false (Jepsen's rule)."""
    if "unknown" in validities:
        return "unknown"
    if False in validities:
        return False
    return True
