"""The shrink's search around its oracle: the oracle (one `solar-chaos run` of a candidate) is replaced
by a rule on the candidate's faults, the one thing faked; everything else is the real search, its log
and its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.shrink import search
from harness.shrink.candidate import read_origin
from harness.shrink.oracle import Judged, Quota
from tests.unit.test_shrink_origin import _run_dir


def _oracle(monkeypatch: pytest.MonkeyPatch, rule, calls: list[Path]) -> None:
    """Each run fails when `rule(faults)` holds, where faults are the candidate file's."""

    def judge_once(origin, file: Path, reports: Path, timeout_s: float) -> Judged:
        calls.append(file)
        faults = yaml.safe_load(file.read_text())["faults"]
        outcome = rule(faults)
        if outcome == "stopped":
            return Judged("error", [], None, 1.0, "stopped at the budget's end", stopped=True)
        run_dir = reports / "r" / "random-many"
        run_dir.mkdir(parents=True)
        (run_dir / "report.html").write_text(f"<p>{len(faults)} faults</p>")
        kinds = ["stream-duplicate"] if outcome else []
        return Judged("fails" if outcome else "passes", kinds, run_dir, 30.0, "")

    monkeypatch.setattr(search, "judge_once", judge_once)


def _needs_orchestrator_pause(faults) -> bool:
    return any(f["fault"] == "pause" and f["target"] == "orchestrator" for f in faults)


def test_ten_faults_shrink_to_the_one_that_matters_within_twenty_runs(tmp_path, monkeypatch) -> None:
    calls: list[Path] = []
    _oracle(monkeypatch, _needs_orchestrator_pause, calls)
    origin = read_origin(_run_dir(tmp_path))
    result = search.Shrink(origin, 3600, Quota(1, 1), Quota(2, 3), lambda line: None).run()
    assert result.confirmed and result.minimal is not None
    (fault,) = result.minimal.fault_dicts()
    assert fault["fault"] == "pause" and fault["target"] == "orchestrator" and fault["for"] <= 1.25
    assert result.minimal.agents == 1 and result.minimal.duration < 48
    minimal = yaml.safe_load((origin.run_dir / "shrink" / "minimal.yaml").read_text())
    assert minimal["name"] == "minimal" and minimal["faults"] == [fault]
    assert (origin.run_dir / "shrink" / "minimal.html").read_text() == "<p>1 faults</p>"
    assert len(calls) <= 20  # issue 31: about 20 runs for a 10-fault failure, confirmation included


def test_a_resumed_shrink_runs_nothing_it_has_on_record(tmp_path, monkeypatch) -> None:
    calls: list[Path] = []
    _oracle(monkeypatch, _needs_orchestrator_pause, calls)
    origin = read_origin(_run_dir(tmp_path))
    first = search.Shrink(origin, 3600, Quota(1, 1), Quota(2, 3), lambda line: None).run()
    before = len(calls)
    again = search.Shrink(origin, 3600, Quota(1, 1), Quota(2, 3), lambda line: None).run()
    assert len(calls) == before and again.minimal == first.minimal


def test_a_flaky_failure_is_never_reported_as_the_minimal_one(tmp_path, monkeypatch) -> None:
    """Any single fault 'fails' once, then never again: the confirmation must refuse each of them and
    walk back to the original, which fails every time."""
    seen: dict[str, int] = {}

    def rule(faults) -> bool:
        key = json.dumps(faults, sort_keys=True)
        seen[key] = seen.get(key, 0) + 1
        return len(faults) == 10 or seen[key] == 1

    calls: list[Path] = []
    _oracle(monkeypatch, rule, calls)
    origin = read_origin(_run_dir(tmp_path))
    result = search.Shrink(origin, 3600, Quota(1, 1), Quota(2, 3), lambda line: None).run()
    assert result.minimal is not None and len(result.minimal.faults) == 10
    assert any("failed only by chance" in note for note in result.notes)


def test_a_run_stopped_by_the_budget_is_not_recorded(tmp_path, monkeypatch) -> None:
    calls: list[Path] = []
    _oracle(monkeypatch, lambda faults: "stopped", calls)
    origin = read_origin(_run_dir(tmp_path))
    result = search.Shrink(origin, 3600, Quota(1, 1), Quota(2, 3), lambda line: None).run()
    assert result.minimal is None and calls
    log = [json.loads(line) for line in (origin.run_dir / "shrink" / "shrink.jsonl").read_text().splitlines()]
    assert not [r for r in log if r["event"] == "run"] and [r for r in log if r["event"] == "stopped"]
