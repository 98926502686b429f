"""Clean runs on record: a scenario that `make scenarios` already ran valid against the clean system, found
through its JUnit XML (reports/junit.xml, whose test cases carry the run directory and the verdict as
properties: harness.plugin). `make efficacy --clean-from reports/junit.xml` takes such a run as a planted
bug's clean half, so a CI job that runs both does not run every scenario clean twice.

A run stands for the clean half only when its own files say so: its verdict.json is valid, and its
scenario.json is the scenario as the row would run it (the same resolved scenario and seed, no planted bug,
no other image). The JUnit XML must come from the same checkout: nothing in a run directory names the
code that ran it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import store
from harness.errors import HarnessError
from harness.junit import VERDICT, Case, JUnitError, cases
from harness.scenario import load_scenarios

# Written per run, not part of what was run: the command that runs it again, and what was put under test
# (compared on its own).
_NOT_COMPARED = ("rerun", "sut")


def _clean_on(ran: Any, sut: str | None) -> bool:
    """Whether scenario.json's `sut` says: no planted bug, no other image, implementation `sut` (--sut).
    Its other fields (each node's image) are written per run."""
    return (
        isinstance(ran, dict)
        and ran.get("image") is None
        and ran.get("buggify") == []
        and ran.get("implementation") == sut
    )


class CleanRecordError(HarnessError):
    """The JUnit XML named by --clean-from cannot be read."""


def _cases(junit: Path) -> list[Case]:
    try:
        return cases(junit)
    except JUnitError as e:
        raise CleanRecordError(f"--clean-from {e}") from None


def _comparable(scenario: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scenario.items() if k not in _NOT_COMPARED}


def proven_clean(
    junit: Path, scenario_file: Path, soak_duration: str | None = None, sut: str | None = None
) -> Path | None:
    """The run directory of a passed test case of `junit` that ran `scenario_file` (one scenario, no
    matrix) valid against the clean system (of implementation `sut`, --sut) exactly as it would run now;
    None when there is none."""
    ((_, scenario),) = load_scenarios(scenario_file, soak_duration=soak_duration)
    want = _comparable(scenario.resolved())
    for case in _cases(junit):
        if case.name != scenario.name or case.classname != f"scenarios.{scenario_file.name}":
            continue
        run = case.run_dir
        if not case.passed or case.properties.get(VERDICT) != "valid" or run is None:
            continue
        try:
            ran = store.read_json(run / store.SCENARIO, "the scenario as run")
            verdict = store.read_json(run / store.VERDICT, "a verdict")
        except store.RunDirError:
            continue
        if verdict.get("valid") is True and _clean_on(ran.get("sut"), sut) and _comparable(ran) == want:
            return run
    return None
