"""A scenario run end to end ends in the checkers' verdict, and `solar-chaos check` re-judges its run
directory later, offline, to the same verdict.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import store
from harness.paths import ROOT
from tests.integration.chromium import open_page

pytestmark = pytest.mark.docker

SCENARIO = """\
name: judged
seed: 3
load: {rate: 20, duration: 14s}
faults:
  - {at: 2s, for: 2s, fault: outage, target: nats, mode: refuse}
expect:
  recovery: {drained_within: 20s}
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_a_run_is_judged_and_check_rejudges_it_offline_to_the_same_verdict(images, tmp_path: Path) -> None:
    (tmp_path / "judged.yaml").write_text(SCENARIO)
    reports = tmp_path / "reports"
    ran = _cli("run", str(tmp_path / "judged.yaml"), "--images", images.mode.value, "--reports", str(reports))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (run_dir,) = reports.glob("*/judged")
    written = json.loads((run_dir / store.VERDICT).read_text())
    assert ran.stdout.startswith("PASS judged (seed 3)"), ran.stdout
    assert written["valid"] is True, written["anomalies"]
    # The outage bit: intents were answered pending-commit and the agents' buffers rose.
    effects = written["checks"]["effects"]["faults"]["f1"]["effects"]
    assert {"answers", "buffer"} <= set(effects), effects
    rec = written["checks"]["reconciliation"]
    assert rec["accepted"] + rec["refused"] + rec["unknown"] == 280  # every intent of the load judged
    assert rec["stream_msgs"] == rec["store_rows"] >= rec["accepted"]
    assert "commit_not_judged" not in written["checks"]["latency"]  # 100 healthy values or more
    # Every process of the run was sampled for its memory (the soak's leak check reads them), fds too
    # where the process is visible; the stream and consumer as well.
    samples = [json.loads(line) for line in (run_dir / store.SAMPLES).read_text().splitlines()]
    memory = {s["source"] for s in samples if s.get("rss_bytes", 0) > 0}
    processes = {"agent-1", "agent-2", "agent-3", "orchestrator", "projector", "nats", "surrealdb"}
    assert processes | {"toxiproxy", "harness"} <= memory, memory
    assert any(s["source"] == "jetstream" and s["stream_msgs"] > 0 for s in samples)

    (run_dir / store.VERDICT).unlink()
    checked = _cli("check", str(run_dir), "--json")  # no live system behind it any more
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout) == written
    assert json.loads((run_dir / store.VERDICT).read_text()) == written


def test_a_broken_promise_fails_the_run_with_its_anomaly_and_the_rerun_command(
    images, tmp_path: Path
) -> None:
    # A budget no real system meets: the judge must be able to say no.
    (tmp_path / "judged.yaml").write_text(SCENARIO + "  latency: {commit_ms: 0.001}\n")
    reports = tmp_path / "reports"
    ran = _cli(
        "run",
        str(tmp_path / "judged.yaml"),
        "--images",
        images.mode.value,
        "--reports",
        str(reports),
        "--seed",
        "5",
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "FAIL judged (seed 5): INVALID: 1 anomaly (commit-latency 1)" in ran.stdout, ran.stdout
    assert f"re-run: solar-chaos run {tmp_path / 'judged.yaml'} --seed 5" in ran.stdout
    (run_dir,) = reports.glob("*/judged")
    assert _cli("check", str(run_dir)).returncode == 1

    # Its report opens in a browser with nothing fetched and no error, and shows why it failed.
    assert f"report: {run_dir / store.REPORT}" in ran.stdout
    assert (run_dir.parent / "index.html").is_file()
    probe = (
        "({verdict: document.querySelector('#verdict').textContent,"
        " figures: document.querySelectorAll('figure').length,"
        " drawn: document.querySelectorAll('figure svg').length,"
        " captions: Array.from(document.querySelectorAll('figcaption'), c => c.textContent)})"
    )
    visit = open_page(run_dir / store.REPORT, probe, screenshot=run_dir / "report.png")
    assert visit.console_errors == []
    assert visit.requests == [(run_dir / store.REPORT).resolve().as_uri()]
    assert visit.values["verdict"] == "INVALID: 1 anomaly (commit-latency 1)"
    # Every figure drew its plot, the processes' memory among them.
    assert visit.values["figures"] == visit.values["drawn"] >= 6, visit.values
    assert any("memory" in caption for caption in visit.values["captions"]), visit.values["captions"]
    assert (run_dir / "report.png").stat().st_size > 10_000


def test_pytest_writes_the_verdict_into_junit_xml_and_links_the_report_from_pytest_html(
    images, tmp_path: Path
) -> None:
    folder = tmp_path / "scenarios"  # the collector takes YAML files under a scenarios/ folder
    folder.mkdir()
    (folder / "judged.yaml").write_text(SCENARIO + "  latency: {commit_ms: 0.001}\n")
    junit, page = tmp_path / "junit.xml", tmp_path / "index.html"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "harness.plugin",
            "--rootdir",
            str(tmp_path),
            str(folder),
            "--images",
            images.mode.value,
            f"--junitxml={junit}",
            f"--html={page}",
            "--self-contained-html",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    case = ET.parse(junit).getroot().find(".//testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and "INVALID: 1 anomaly (commit-latency 1)" in failure.get("message", "")
    assert "re-run it as it ran" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == "INVALID: 1 anomaly (commit-latency 1)"
    report = Path(props["report"])
    assert report.is_file() and Path(props["run_dir"]) == report.parent
    html = page.read_text()
    assert os.path.relpath(report, tmp_path) in html and "INVALID: 1 anomaly (commit-latency 1)" in html
