"""The harness is worth the bugs it catches. For every planted bug of netsync (NETSYNC_BUGGIFY,
docs/contract.md, "Planted bugs"), the scenario its row names runs twice on real containers:
against the clean system it is valid, with the flag it is invalid with the anomaly the row names.

The table in docs/contract.md is the one statement of which scenario guards which promise; this
test reads it (harness.planted), so the table cannot drift from what is proven.

A row whose scenario is a soak is marked soak, so it runs only when soaks are asked for (`-m soak`
or --soak-duration, as for the scenarios; the nightly workflow does), for --soak-duration or else
SOAK_DURATION: a leak must have time to outgrow the leak check's thresholds. With --clean-from, a
clean run on record in `make scenarios`' JUnit XML stands for the row's clean half
(harness.clean_runs)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.checkers.verdict import details, headline
from harness.clean_runs import proven_clean
from harness.paths import ROOT, reports_dir
from harness.planted import Planted, planted
from harness.runner import RunResult, run_scenario
from harness.scenario import load_scenarios
from harness.scenario.loader import SOAK
from netsync import buggify

# How long a soak row's load runs unless --soak-duration says: at 100 intents/s a leak of 4 KiB per
# decided intent grows past the 32 MiB threshold within the 480 s judged after the warm-up.
SOAK_DURATION = "10m"


def test_the_table_names_every_flag_once_and_shipped_scenarios() -> None:
    rows = planted()
    assert sorted(row.flag for row in rows) == sorted(buggify.FLAGS)
    for row in rows:
        assert (ROOT / "scenarios" / f"{row.scenario}.yaml").is_file(), f"scenarios/{row.scenario}.yaml"


def _is_soak(row: Planted) -> bool:
    path = ROOT / "scenarios" / f"{row.scenario}.yaml"
    if not path.is_file():  # the table's test names it; collection goes on
        return False
    ((_, loaded),) = load_scenarios(path)
    return SOAK in loaded.markers


def _rows() -> list:
    return [
        pytest.param(row, id=row.flag, marks=[pytest.mark.soak] if _is_soak(row) else []) for row in planted()
    ]


def _run(scenario: Path, images, bugs: tuple[str, ...], soak: str | None) -> RunResult:
    ((_, loaded),) = load_scenarios(scenario, soak_duration=soak)
    return asyncio.run(
        run_scenario(loaded, images=images, reports=reports_dir(), buggify=bugs, soak_duration=soak)
    )


def _said(result: RunResult) -> str:
    return "\n".join([headline(result.verdict), *details(result.verdict), f"run directory: {result.dir}"])


@pytest.mark.docker
@pytest.mark.parametrize("row", _rows())
def test_the_scenario_catches_the_planted_bug(images, row: Planted, request: pytest.FixtureRequest) -> None:
    flag, scenario, kind = row.flag, row.scenario, row.kind
    path = ROOT / "scenarios" / f"{scenario}.yaml"
    soak = (request.config.getoption("--soak-duration") or SOAK_DURATION) if _is_soak(row) else None
    junit = request.config.getoption("--clean-from")
    on_record = proven_clean(Path(junit), path, soak) if junit else None
    if on_record is not None:
        request.node.user_properties.append(("clean_run", str(on_record)))
    else:
        clean = _run(path, images, (), soak)
        assert clean.verdict["valid"] is True, f"{scenario} is not valid on the clean system:\n{_said(clean)}"
    flagged = _run(path, images, (flag,), soak)
    kinds = {a["kind"] for a in flagged.verdict["anomalies"]}
    assert flagged.verdict["valid"] is False and kind in kinds, (
        f"{scenario} with {flag} should be invalid with {kind}:\n{_said(flagged)}"
    )
