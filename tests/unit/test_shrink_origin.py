"""Reading the failing run a shrink starts from (scenario.json's rerun, verdict.json, history.jsonl),
writing candidates as scenario files the loader accepts, and the original report's link to the result."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from harness.report import write_report
from harness.scenario.loader import load_scenario
from harness.schedule import plan
from harness.shrink.candidate import ShrinkError, read_origin

SCENARIO = Path(__file__).parents[1] / "shrink" / "random-many.yaml"
SEED = 11


def _run_dir(tmp_path: Path, verdict: dict | None = None, kinds_at: dict[str, str] | None = None) -> Path:
    run = tmp_path / "run" / "random-many"
    run.mkdir(parents=True)
    s = load_scenario(SCENARIO)
    resolved = s.resolved(SEED)
    resolved["rerun"] = shlex.join(
        ["solar-chaos", "run", str(SCENARIO), "--seed", str(SEED), "--buggify", "no-dedup-header"]
    )
    (run / "scenario.json").write_text(json.dumps(resolved))
    lines = []
    for step in plan(s, SEED):
        kind = (kinds_at or {}).get(step.fault_id, step.fault.fault)
        op = {
            "t": step.at + 0.01,
            "process": "nemesis",
            "type": "info",
            "f": step.action,
            "fault": kind,
            "fault_id": step.fault_id,
        }
        if step.action == "start":
            op |= {"scheduled": step.at, "target": {}}
        lines.append(json.dumps(op))
    (run / "history.jsonl").write_text("\n".join(lines) + "\n")
    for name in ("stream.jsonl", "store.jsonl", "samples.jsonl"):
        (run / name).write_text("")
    anomalies = [{"kind": "stream-duplicate", "cid": "c1", "detail": "2 messages"}]
    (run / "verdict.json").write_text(
        json.dumps(verdict or {"valid": False, "checks": {}, "anomalies": anomalies})
    )
    return run


def test_the_origin_is_the_file_the_run_names_with_its_random_faults_written_out(tmp_path: Path) -> None:
    origin = read_origin(_run_dir(tmp_path))
    assert origin.seed == SEED and origin.kinds == {"stream-duplicate"}
    assert origin.sut_args == ("--buggify", "no-dedup-header")
    shape = origin.shape()
    assert len(shape.faults) == 10 and shape.agents == 3 and shape.duration == 48.0
    written = origin.write(shape, tmp_path / "c", "a candidate")
    back = load_scenario(written)
    assert back.random is None and len(back.faults) == 10 and back.seed == SEED
    assert written.read_text().startswith("# a candidate\n")
    assert [step.at for step in plan(back, SEED)] == [step.at for step in plan(load_scenario(SCENARIO), SEED)]


def test_a_file_that_changed_since_the_run_is_refused_naming_the_fault(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, kinds_at={"r2": "crash"})
    with pytest.raises(
        ShrinkError, match=r"history.jsonl: fault r2 started a crash .* the file changed since the run"
    ):
        read_origin(run)


def test_a_valid_run_is_not_shrunk(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, verdict={"valid": True, "checks": {}, "anomalies": []})
    with pytest.raises(
        ShrinkError, match=r"verdict.json: valid: True; allowed: a run whose verdict is invalid"
    ):
        read_origin(run)


def test_a_shape_that_is_no_valid_scenario_is_refused_by_the_loader(tmp_path: Path) -> None:
    origin = read_origin(_run_dir(tmp_path))
    shape = origin.shape()
    short = shape.__class__(shape.faults, shape.agents, shape.rate, 5.0)  # faults start after the load ends
    with pytest.raises(Exception, match="is not before the load ends"):
        origin.write(short, tmp_path / "c", "too short")


def test_the_original_report_links_the_shrunk_one_and_ignores_a_link(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    (run / "shrink").mkdir()
    (run / "shrink" / "minimal.yaml").write_text("# The smallest <schedule>\n# 1 faults\nname: minimal\n")
    (run / "shrink" / "minimal.html").write_text("<html></html>")
    page = write_report(run).read_text()
    assert "href='shrink/minimal.html'" in page and "The smallest &lt;schedule&gt;" in page
    (run / "shrink" / "minimal.yaml").unlink()
    (run / "shrink" / "minimal.yaml").symlink_to("/etc/passwd")
    assert "id=shrunk" not in write_report(run).read_text()
