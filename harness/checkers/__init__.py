"""The judge: checkers are pure functions of a run directory (docs/run-format.md) and compose into
one verdict. `judge(dir)` returns it; `write_verdict(dir)` also writes verdict.json.

A checker that crashes does not crash the judge: its check becomes `"valid": "unknown"` with the
error, and the verdict cannot be valid (exit 2 from `solar-chaos check`)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from harness import store
from harness.checkers import (
    analytics,
    buffers,
    containers,
    effects,
    expectations,
    latency,
    leak,
    reconciliation,
    retention,
    telemetry,
)
from harness.checkers.base import Anomaly, Checker, Result, Validity, merge
from harness.checkers.run import Run
from harness.store import RunDirError

CHECKERS: tuple[Checker, ...] = (
    reconciliation.CHECKER,
    buffers.CHECKER,
    latency.CHECKER,
    expectations.CHECKER,
    effects.CHECKER,
    containers.CHECKER,
    leak.CHECKER,
    retention.CHECKER,
    telemetry.CHECKER,
    analytics.CHECKER,
)
KINDS = tuple(kind for checker in CHECKERS for kind in checker.kinds)


def _guarded(checker: Checker, run: Run) -> Result:
    try:
        return checker.check(run)
    except RunDirError as e:
        return Result(valid="unknown", error=str(e))
    except Exception as e:  # a bug in a checker: report it as this check's error, not a traceback
        return Result(valid="unknown", error=_bug(e))


def _bug(e: Exception) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1]
    return f"{type(e).__name__}: {e} ({Path(where.filename).name}:{where.lineno})"


def _waiver(checker: Checker, run: Run, result: Result) -> Result:
    """The result as the scenario's waiver leaves it. A waiver that cannot be read (settings the
    check itself did not need) waives nothing; one that crashes makes the check unknown."""
    try:
        waiver = checker.waived(run.settings)
    except RunDirError:
        return result
    except Exception as e:
        return Result(valid="unknown", error=_bug(e))
    if waiver is None:
        return result
    # Measured all the same, so the figures stay; what it found is shown, not counted.
    return Result({**result.figures, "waived": waiver, "waived_anomalies": len(result.anomalies)}, valid=True)


def judge(run_dir: Path, checkers: tuple[Checker, ...] = CHECKERS) -> dict[str, Any]:
    """The verdict on one run directory, as docs/run-format.md's verdict.json (not written)."""
    run_dir = Path(run_dir)
    if not store.is_run_dir(run_dir):
        raise RunDirError(
            run_dir / store.SCENARIO,
            "missing: not a scenario's run directory",
            expected=f"a folder with {', '.join(store.REQUIRED)}",
        )
    _refuse_odd_logs(run_dir)
    run = Run(run_dir)
    checks: dict[str, Any] = {}
    anomalies: list[Anomaly] = []
    validities: list[Validity] = []
    for checker in checkers:
        result = _guarded(checker, run)
        if result.error is None:
            result = _waiver(checker, run, result)
        validities.append(result.validity)
        checks[checker.name] = {"valid": result.validity, **result.figures}
        if result.error:
            checks[checker.name]["error"] = result.error
        anomalies += result.anomalies
    return {
        "valid": merge(validities),
        "checks": checks,
        "anomalies": [a.to_json() for a in anomalies],
    }


def _refuse_odd_logs(run_dir: Path) -> None:
    """The containers' logs explain anomalies, and are read only when there is one to explain: a FIFO
    there would hang that read, a link to a device feed it without end. Refused up front, named."""
    folder = run_dir / store.LOGS
    if folder.is_dir():
        store.regular_files(folder, "*.log", "a container's log, a regular file (or none)")


def write_verdict(run_dir: Path) -> dict[str, Any]:
    verdict = judge(run_dir)
    store.write_json(Path(run_dir) / store.VERDICT, verdict)
    return verdict


def exit_code(valid: Validity) -> int:
    return 0 if valid is True else 1 if valid is False else 2


__all__ = [
    "CHECKERS",
    "KINDS",
    "Anomaly",
    "Checker",
    "Result",
    "Run",
    "exit_code",
    "judge",
    "write_verdict",
]
