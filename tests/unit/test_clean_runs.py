"""harness.clean_runs: which run on record in `make scenarios`' JUnit XML may stand for an efficacy row's
clean half (make efficacy --clean-from). Only a passed case whose own files show the same scenario, run
valid against the clean system."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.clean_runs import CleanRecordError, proven_clean
from harness.paths import ROOT
from harness.scenario import load_scenarios

SCENARIO = ROOT / "scenarios" / "lost-acks.yaml"


def _run_dir(tmp: Path, name: str, *, valid: bool = True, **changes) -> Path:
    ((_, scenario),) = load_scenarios(SCENARIO)
    resolved = scenario.resolved()
    resolved["sut"] = {"image": None, "buggify": []}
    resolved["rerun"] = "solar-chaos run scenarios/lost-acks.yaml"
    for key, value in changes.items():
        resolved[key] = value
    run = tmp / name / "lost-acks"
    run.mkdir(parents=True)
    (run / "scenario.json").write_text(json.dumps(resolved))
    (run / "verdict.json").write_text(json.dumps({"valid": valid, "anomalies": []}))
    return run


def _junit(tmp: Path, run: Path, *, verdict: str = "valid", child: str = "", name: str = "lost-acks") -> Path:
    path = tmp / "junit.xml"
    path.write_text(
        '<?xml version="1.0"?><testsuites><testsuite>'
        f'<testcase classname="scenarios.lost-acks.yaml" name="{name}" time="30">{child}<properties>'
        f'<property name="run_dir" value="{run}"/><property name="verdict" value="{verdict}"/>'
        "</properties></testcase></testsuite></testsuites>"
    )
    return path


def test_a_valid_clean_run_of_the_same_scenario_stands(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a")
    assert proven_clean(_junit(tmp_path, run), SCENARIO) == run


def test_a_clean_run_stands_for_its_own_implementation_only(tmp_path: Path) -> None:
    # scenario.json's sut as runs write it: the implementation (--sut) and each node's image
    nodes = {"agent-1": {"implementation": "net-sync-ts", "image": "solar-chaos/net-sync-ts:abc"}}
    run = _run_dir(
        tmp_path, "a", sut={"image": None, "implementation": "net-sync-ts", "buggify": [], "nodes": nodes}
    )
    assert proven_clean(_junit(tmp_path, run), SCENARIO, sut="net-sync-ts") == run
    assert proven_clean(_junit(tmp_path, run), SCENARIO) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"sut": {"image": None, "buggify": ["no-dedup-header"]}},  # a flagged run is not a clean one
        {"sut": {"image": "other/impl:1", "buggify": []}},  # nor a run of another implementation
        {"seed": 12345},  # another seed draws other faults
        {"load": {"rate": 1.0}},  # the file changed since
    ],
    ids=["flagged", "other-image", "other-seed", "other-scenario"],
)
def test_a_run_of_something_else_does_not_stand(tmp_path: Path, changes: dict) -> None:
    run = _run_dir(tmp_path, "a", **changes)
    assert proven_clean(_junit(tmp_path, run), SCENARIO) is None


def test_an_invalid_verdict_does_not_stand_whatever_the_xml_says(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a", valid=False)
    assert proven_clean(_junit(tmp_path, run), SCENARIO) is None


@pytest.mark.parametrize(
    "child", ['<failure message="x"/>', '<skipped message="x"/>', '<error message="x"/>']
)
def test_a_case_that_did_not_pass_does_not_stand(tmp_path: Path, child: str) -> None:
    run = _run_dir(tmp_path, "a")
    assert proven_clean(_junit(tmp_path, run, child=child), SCENARIO) is None


def test_a_case_of_another_scenario_or_a_missing_run_does_not_stand(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a")
    assert proven_clean(_junit(tmp_path, run, name="nats-down"), SCENARIO) is None
    assert proven_clean(_junit(tmp_path, tmp_path / "gone"), SCENARIO) is None


def test_an_unreadable_record_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "junit.xml"
    bad.write_text("<testsuites><testcase")
    with pytest.raises(CleanRecordError, match=r"--clean-from .*junit\.xml: not XML"):
        proven_clean(bad, SCENARIO)
    with pytest.raises(CleanRecordError, match="--clean-from .*missing.xml"):
        proven_clean(tmp_path / "missing.xml", SCENARIO)
