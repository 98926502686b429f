"""The harness under faults it did not plan: a container of the system dies by someone else's hand, and
the Docker engine itself restarts in the middle of a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import engine, store
from harness.paths import ROOT
from harness.waiting import wait_until

pytestmark = pytest.mark.docker

SCENARIO = """\
name: {name}
seed: 5
load: {{rate: 20, duration: {duration}s}}
faults:
  - {{at: 2s, for: 3s, fault: crash, target: agent-1}}
expect:
  recovery: {{drained_within: 5s}}
"""


def _start(tmp_path: Path, name: str, duration: int, images) -> tuple[subprocess.Popen[str], Path]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, duration=duration))
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--images", images.mode.value,
         "--reports", str(reports)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return proc, reports


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / store.HISTORY).read_text().splitlines()]


def _until_load_passes(reports: Path, name: str, t: float, proc: subprocess.Popen[str]) -> Path:
    """The run directory, once its history has reached `t` seconds of load."""

    def reached() -> Path | None:
        assert proc.poll() is None, proc.communicate()
        for history in reports.glob(f"*/{name}/{store.HISTORY}"):
            lines = history.read_text().splitlines()
            if lines and json.loads(lines[-1])["t"] >= t:
                return history.parent
        return None

    return wait_until(reached, f"the run's load to pass t={t}s", timeout=180, interval=0.2)


def _interrupted(
    tmp_path: Path, name: str, duration: int, images, act: Callable[[str], object]
) -> tuple[subprocess.Popen[str], str, str, Path]:
    """`solar-chaos run` of SCENARIO; once its load has run 8 s, `act(run_id)`; then its end."""
    proc, reports = _start(tmp_path, name, duration, images)
    try:
        run_dir = _until_load_passes(reports, name, 8.0, proc)
        act(run_dir.parent.name)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, out, err, run_dir


def _node(run_id: str, node: str):
    (ctr,) = engine.client().containers.list(
        filters={"label": [f"{engine.RUN_LABEL}={run_id}", f"{engine.NODE_LABEL}={node}"]}
    )
    return ctr


def test_an_unplanned_death_is_recorded_and_the_verdict_says_what_happened(images, tmp_path: Path) -> None:
    # Not the nemesis: nothing in the schedule says so.
    proc, out, err, run_dir = _interrupted(
        tmp_path, "unplanned", 16, images, lambda run_id: _node(run_id, "agent-2").kill()
    )
    run_id = run_dir.parent.name
    assert proc.returncode == 1, out + err
    assert "unplanned_exits: agent-2's container died at t=" in out, out
    # Back only when the heal after the load (at 16 s) revived every container that was down.
    assert "(exit code 137) with no fault acting on it; back at t=16." in out, out

    verdict = json.loads((run_dir / store.VERDICT).read_text())
    containers = verdict["checks"]["containers"]
    assert containers["planned"] == 1, containers  # f1, the scheduled crash of agent-1
    (death,) = containers["unplanned"]
    assert (death["source"], death["event"], death["exit_code"]) == ("agent-2", "die", 137)
    assert 8.0 <= death["t"] <= 12.0 and death["back_at"] >= 16.0, death
    # The harness kept recording after the death: load, samples of the others, and agent-2's refusals.
    ops = _history(run_dir)
    later = [op for op in ops if op.get("f") == "intent" and op["t"] > death["t"] + 2]
    assert len(later) > 50, len(later)
    assert any(op.get("agent") == "agent-2" and op["type"] in ("fail", "info") for op in later)
    samples = [json.loads(line) for line in (run_dir / store.SAMPLES).read_text().splitlines()]
    assert any(s["source"] == "agent-3" and s["t"] > death["t"] + 2 for s in samples)
    assert not engine.list_runs(run_id), "the run left containers or networks behind"


def _restart_engine() -> None:
    """Stop this machine's engine and start it again, as an operator or an upgrade would."""
    if (
        shutil.which("systemctl")
        and subprocess.run(["systemctl", "is-active", "--quiet", "docker"]).returncode == 0
    ):
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=120)
        return
    pid = int(Path("/var/run/docker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "dockerd to stop", timeout=60, interval=0.2)
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-engine.sh")], check=True, timeout=120)


def _engine_restartable() -> str | None:
    if os.geteuid() != 0:
        return "restarting the engine needs root"
    if Path("/var/run/docker.pid").exists() or shutil.which("systemctl"):
        return None
    return "this machine's engine is neither ours (scripts/ensure-engine.sh) nor systemd's"


def test_an_engine_restart_fails_the_run_clearly_keeps_its_history_and_leaves_nothing(
    images, tmp_path: Path
) -> None:
    if why := _engine_restartable():
        pytest.skip(why)
    proc, out, err, run_dir = _interrupted(
        tmp_path, "engine-restart", 30, images, lambda run_id: _restart_engine()
    )
    run_id = run_dir.parent.name
    assert proc.returncode == 2, out + err
    assert "solar-chaos: the Docker engine went away at t=" in err, err
    assert "every container of the run stopped with it" in err, err
    assert f"its history so far is in {run_dir}" in err, err
    assert "Traceback" not in err, err
    ops = _history(run_dir)
    assert sum(op.get("type") == "invoke" for op in ops) >= 100, "the history before the restart is kept"
    assert not (run_dir / store.VERDICT).exists()  # nothing to judge: no stream, no store
    assert not engine.list_runs(run_id), "the run left containers or networks behind"


def test_sigterm_stops_a_run_as_ctrl_c_does_healed_and_removed_history_kept(images, tmp_path: Path) -> None:
    """A cancelled CI job sends SIGTERM: the harness heals, removes its run and exits 143 itself, before
    the reaper would (10 s after its connection drops), keeping the history it recorded."""
    proc, reports = _start(tmp_path, "terminated", 40, images)
    try:
        run_dir = _until_load_passes(reports, "terminated", 8.0, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_id = run_dir.parent.name
    assert proc.returncode == 128 + signal.SIGTERM, out + err
    assert "solar-chaos: stopped by SIGTERM" in err, err
    assert not engine.list_runs(run_id), "the harness exited leaving containers or networks to the reaper"
    ops = _history(run_dir)
    assert any(op.get("f") == "intent" and op["t"] >= 8.0 for op in ops), "the history was not kept"
    # The crash of agent-1 (2 to 5 s) was healed by its own stop; nothing was left applied.
    assert [op["f"] for op in ops if op.get("process") == "nemesis"] == ["start", "stop"]
