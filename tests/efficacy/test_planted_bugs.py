"""The harness is worth the bugs it catches. For every planted bug of netsync (NETSYNC_BUGGIFY,
docs/contract.md, "Planted bugs"), the scenario its row names runs twice on real containers:
against the clean system it is valid, with the flag it is invalid with the anomaly the row names.

The table in docs/contract.md is the one statement of which scenario guards which promise; this
test reads it (harness.planted), so the table cannot drift from what is proven."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.checkers.verdict import details, headline
from harness.paths import ROOT, reports_dir
from harness.planted import Planted, planted
from harness.runner import RunResult, run_scenario
from harness.scenario import load_scenarios
from netsync import buggify


def test_the_table_names_every_flag_once_and_shipped_scenarios() -> None:
    rows = planted()
    assert sorted(row.flag for row in rows) == sorted(buggify.FLAGS)
    for row in rows:
        assert (ROOT / "scenarios" / f"{row.scenario}.yaml").is_file(), f"scenarios/{row.scenario}.yaml"


def _run(scenario: Path, images, bugs: tuple[str, ...]) -> RunResult:
    ((_, loaded),) = load_scenarios(scenario)
    return asyncio.run(run_scenario(loaded, images=images, reports=reports_dir(), buggify=bugs))


def _said(result: RunResult) -> str:
    return "\n".join([headline(result.verdict), *details(result.verdict), f"run directory: {result.dir}"])


@pytest.mark.docker
@pytest.mark.parametrize("row", planted(), ids=[row.flag for row in planted()])
def test_the_scenario_catches_the_planted_bug(images, row: Planted) -> None:
    flag, scenario, kind = row.flag, row.scenario, row.kind
    path = ROOT / "scenarios" / f"{scenario}.yaml"
    clean = _run(path, images, ())
    assert clean.verdict["valid"] is True, f"{scenario} is not valid on the clean system:\n{_said(clean)}"
    flagged = _run(path, images, (flag,))
    kinds = {a["kind"] for a in flagged.verdict["anomalies"]}
    assert flagged.verdict["valid"] is False and kind in kinds, (
        f"{scenario} with {flag} should be invalid with {kind}:\n{_said(flagged)}"
    )
