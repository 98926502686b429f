"""The harness is worth the bugs it catches. For every planted bug (NETSYNC_BUGGIFY, docs/contract.md,
"Planted bugs"), the scenario its row names runs twice on real containers: against the clean system it is
valid, with the flag it is invalid with the anomaly the row names.

--sut (or --sut-image) picks the implementation, as for the scenarios (`make efficacy SUT=net-sync-ts`): a row
whose flag an implementation in use lacks (its image's label solar-chaos.bugs), or whose scenario does not
run on it (implementations_skip), is skipped with that reason, never passed.

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

from harness import implementations
from harness.checkers.verdict import details, headline
from harness.clean_runs import proven_clean
from harness.paths import ROOT, reports_dir
from harness.planted import Planted, planted
from harness.runner import RunResult, run_scenario, system_config
from harness.scenario import load_scenarios
from harness.scenario.loader import SOAK
from netsync import buggify

# How long a soak row's load runs unless --soak-duration says: at 100 intents/s a leak of 4 KiB per
# decided intent grows past the 32 MiB threshold within the 480 s judged after the warm-up.
SOAK_DURATION = "10m"


def test_the_table_names_every_flag_once_and_shipped_scenarios() -> None:
    rows = planted()
    assert sorted(row.flag for row in rows) == sorted(buggify.FLAGS)
    assert all(implementations.DEFAULT in row.implementations for row in rows), "netsync has every flag"
    for row in rows:
        assert (ROOT / "scenarios" / f"{row.scenario}.yaml").is_file(), f"scenarios/{row.scenario}.yaml"


NIGHTLY = "nightly"  # a scenario past CI's budget (docs/operations.md, CI): its row goes with it


def _markers(row: Planted) -> list[str]:
    """The row's scenario's markers that decide where the row runs: soak, nightly."""
    path = ROOT / "scenarios" / f"{row.scenario}.yaml"
    if not path.is_file():  # the table's test names it; collection goes on
        return []
    ((_, loaded),) = load_scenarios(path)
    return [m for m in loaded.markers if m in (SOAK, NIGHTLY)]


def _is_soak(row: Planted) -> bool:
    return SOAK in _markers(row)


def _rows() -> list:
    return [
        pytest.param(row, id=row.flag, marks=[getattr(pytest.mark, m) for m in _markers(row)])
        for row in planted()
    ]


def _run(scenario: Path, images, bugs: tuple[str, ...], soak: str | None, config: pytest.Config) -> RunResult:
    ((_, loaded),) = load_scenarios(scenario, soak_duration=soak)
    return asyncio.run(
        run_scenario(
            loaded,
            images=images,
            reports=reports_dir(),
            buggify=bugs,
            soak_duration=soak,
            sut_name=config.getoption("--sut"),
            sut_image=config.getoption("--sut-image"),
        )
    )


def _cannot_run(scenario: Path, images, flag: str, config: pytest.Config) -> str | None:
    """Why the row cannot run on the implementations chosen (--sut, --sut-image), or None."""
    ((_, loaded),) = load_scenarios(scenario)
    sut, sut_image = config.getoption("--sut"), config.getoption("--sut-image")
    if (why := implementations.skipped(loaded, sut)) is not None:
        return why
    used = set(implementations.image_roles(system_config(loaded, sut_image, (flag,), sut)))
    return implementations.unknown_bugs(images, used, (flag,), sut_image)


def _said(result: RunResult) -> str:
    return "\n".join([headline(result.verdict), *details(result.verdict), f"run directory: {result.dir}"])


@pytest.mark.docker
@pytest.mark.parametrize("row", _rows())
def test_the_scenario_catches_the_planted_bug(images, row: Planted, request: pytest.FixtureRequest) -> None:
    flag, scenario, kind = row.flag, row.scenario, row.kind
    path = ROOT / "scenarios" / f"{scenario}.yaml"
    if request.config.getoption("--sut-image") is None:  # the table has a column per named implementation
        name = request.config.getoption("--sut") or implementations.DEFAULT
        has = flag in (implementations.known_bugs(images, name) or ())
        assert (name in row.implementations) == has, (
            f"docs/contract.md's planted-bugs table says {name} {'has' if not has else 'lacks'} {flag}, "
            f"its image's label solar-chaos.bugs says it {'has' if has else 'lacks'} it"
        )
    why = _cannot_run(path, images, flag, request.config)
    if why is not None:
        pytest.skip(why)
    soak = (request.config.getoption("--soak-duration") or SOAK_DURATION) if _is_soak(row) else None
    junit = request.config.getoption("--clean-from")
    on_record = proven_clean(Path(junit), path, soak, request.config.getoption("--sut")) if junit else None
    if on_record is not None:
        request.node.user_properties.append(("clean_run", str(on_record)))
    else:
        clean = _run(path, images, (), soak, request.config)
        assert clean.verdict["valid"] is True, f"{scenario} is not valid on the clean system:\n{_said(clean)}"
    flagged = _run(path, images, (flag,), soak, request.config)
    kinds = {a["kind"] for a in flagged.verdict["anomalies"]}
    assert flagged.verdict["valid"] is False and kind in kinds, (
        f"{scenario} with {flag} should be invalid with {kind}:\n{_said(flagged)}"
    )
