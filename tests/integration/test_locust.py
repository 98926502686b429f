"""The Locust engine on real containers: a scenario that sets `load.engine: locust` (one Locust process),
and any scenario under `--load-workers 2` (a master and two workers), leave a well-formed history (the
shards merged in time order with the nemesis's lines, every invoke answered once) and a valid verdict,
with Locust's CSV and HTML beside."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from harness import store
from harness.paths import ROOT

pytestmark = pytest.mark.docker

SCENARIO = """\
name: swarm
seed: 4
load: {{rate: 20, duration: 12s{engine}}}
faults:
  - {{at: 3s, for: 2s, fault: outage, target: nats, mode: refuse}}
expect:
  recovery: {{drained_within: 20s}}
"""


def sampled(run_dir: Path) -> set[str]:
    """The sources of samples.jsonl that have a resident memory figure."""
    lines = (run_dir / store.SAMPLES).read_text().splitlines()
    return {s["source"] for s in map(json.loads, lines) if s.get("rss_bytes")}


def well_formed(run_dir: Path, processes: int) -> list[dict]:
    """history.jsonl as the checkers need it, and what the merge said about it."""
    ops = [json.loads(line) for line in (run_dir / store.HISTORY).read_text().splitlines()]
    assert [op["t"] for op in ops] == sorted(op["t"] for op in ops)
    intents = [op for op in ops if op["process"] != "nemesis"]
    invokes = Counter(op["cid"] for op in intents if op["type"] == "invoke")
    completions = Counter(op["cid"] for op in intents if op["type"] != "invoke")
    assert len(invokes) == 240 and set(invokes.values()) == {1}  # rate x duration, each cid once
    assert completions == invokes  # every invoke answered, once
    for op in intents:
        if op["type"] == "invoke":
            assert list(op) == ["t", "process", "f", "cid", "agent", "type", "key", "value"], op
        else:
            assert op["type"] in ("ok", "fail", "info") and op["f"] == "intent", op
    assert {op["process"].split(".")[0] for op in intents} == {f"w{k}" for k in range(processes)}
    nemesis = [(op["f"], op["fault_id"]) for op in ops if op["process"] == "nemesis"]
    assert nemesis == [("start", "f1"), ("stop", "f1")]
    merge = json.loads((run_dir / "locust" / "merge.json").read_text())
    assert merge["problems"] == [] and merge["lines"] == len(ops)
    locust = run_dir / "locust"
    assert (locust / "report.html").stat().st_size > 10_000 and (locust / "locust_stats.csv").is_file()
    assert not list(locust.glob("history-*.jsonl"))  # merged without a problem: the shards are gone
    return ops


def test_a_scenario_with_the_locust_engine_is_judged_valid(images, tmp_path: Path) -> None:
    (tmp_path / "swarm.yaml").write_text(SCENARIO.format(engine=", engine: locust"))
    reports = tmp_path / "reports"
    ran = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(tmp_path / "swarm.yaml")]
        + ["--images", images.mode.value, "--reports", str(reports)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (run_dir,) = reports.glob("*/swarm")
    well_formed(run_dir, processes=1)
    verdict = json.loads((run_dir / store.VERDICT).read_text())
    assert verdict["valid"] is True, verdict["anomalies"]
    rec = verdict["checks"]["reconciliation"]
    assert rec["accepted"] + rec["refused"] + rec["unknown"] == 240
    assert json.loads((run_dir / store.SCENARIO).read_text())["load"]["engine"] == "locust"
    assert {"harness", "locust"} <= sampled(run_dir)  # the load's memory is watched like the harness's


def test_load_workers_2_runs_a_master_and_two_workers_and_the_verdict_holds(images, tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"  # the collector takes YAML files under a scenarios/ folder
    folder.mkdir()
    (folder / "swarm.yaml").write_text(SCENARIO.format(engine=""))
    junit = tmp_path / "junit.xml"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.plugin", "--rootdir", str(tmp_path), str(folder)]
        + ["--images", images.mode.value, "--load-workers", "2", f"--junitxml={junit}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    case = ET.parse(junit).getroot().find(".//testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    run_dir = Path(props["run_dir"])
    well_formed(run_dir, processes=2)
    assert props["verdict"] == "valid", props
    for name in ("master", "worker-0", "worker-1"):
        assert (run_dir / "locust" / f"{name}.log").is_file()
        assert f"locust-{name}" in sampled(run_dir)
    resolved = json.loads((run_dir / store.SCENARIO).read_text())
    assert resolved["load"]["engine"] == "locust" and resolved["load"]["workers"] == 2
    assert "--load-workers 2" in resolved["rerun"]
