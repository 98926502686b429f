"""Ctrl-C in the middle of a fault: the fault is healed and recorded as stopped, and the
run's containers and networks are gone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness import engine
from harness.paths import ROOT
from harness.waiting import wait_until

pytestmark = pytest.mark.docker

SCENARIO = """\
name: interrupted
load: {rate: 5, duration: 60s}
faults:
  - {at: 1s, fault: partition, groups: [[agent-1], [agent-2, agent-3]], mode: blackhole}
"""


def test_ctrl_c_heals_the_active_fault_and_removes_the_run(images, tmp_path: Path) -> None:
    (tmp_path / "interrupted.yaml").write_text(SCENARIO)
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(tmp_path / "interrupted.yaml"),
            "--images",
            images.mode.value,
            "--reports",
            str(reports),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As at a terminal: a harness started in the background (make test under nohup) has SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:

        def history() -> list[dict]:
            files = list(reports.glob("*/interrupted/history.jsonl"))
            return [json.loads(line) for line in files[0].read_text().splitlines()] if files else []

        wait_until(
            lambda: any(op.get("f") == "start" for op in history()), "the partition to start", timeout=90
        )
        run_id = next(reports.iterdir()).name
        assert engine.list_runs(run_id), "the run's containers should be up during the fault"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, out[-2000:]  # stopped, not run to its end
    nemesis = [op for op in history() if op.get("process") == "nemesis"]
    assert [op["f"] for op in nemesis] == ["start", "stop"], out[-2000:]
    assert nemesis[1]["fault_id"] == nemesis[0]["fault_id"]
    assert not engine.list_runs(run_id), "Ctrl-C left the run's containers or networks behind"
