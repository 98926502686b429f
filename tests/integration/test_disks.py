"""Nodes' data on faultfs in a real system (issue 18): a power loss of NATS loses acknowledged intents with
JetStream's default sync and none with `sync_interval: always`, as the checkers count them; and a SIGKILLed
harness leaves no faultfs mount, and `solar-chaos clean` removes its host directory."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness import engine
from harness.faultfs.control import faultfs_mounts
from harness.images import Images
from harness.paths import ROOT, runs_state_dir
from harness.runner import run_scenario
from harness.scenario import load_scenarios
from harness.waiting import wait_until

pytestmark = pytest.mark.docker

POWER_LOSS = """\
name: npl
topology: {agents: 3, disk: {nats: faultfs}}
load: {rate: 20, duration: 20s}
faults: [{at: 8s, for: 2s, fault: power-loss, targets: nats}]
expect: {recovery: {drained_within: 20s}}
matrix: {topology.nats.sync_interval: [default, always]}
"""


@pytest.mark.parametrize("sync", ["default", "always"])
def test_a_power_loss_of_nats_loses_acknowledged_intents_unless_it_syncs_always(
    images: Images, tmp_path: Path, sync: str
) -> None:
    path = tmp_path / "npl.yaml"
    path.write_text(POWER_LOSS)
    scenario = dict(load_scenarios(path))[f"sync_interval={sync}"]
    result = asyncio.run(run_scenario(scenario, images=images, reports=tmp_path / "reports", source=path))
    verdict = result.verdict
    lost = [a for a in verdict["anomalies"] if a["kind"] == "lost"]
    effects = verdict["checks"]["effects"]["faults"]
    assert [f["effects"].get("container") for f in effects.values()] == ["the nemesis saw nats halted"]
    if sync == "default":
        # JetStream acknowledged them and had not fsynced them: gone with the page cache it never flushed.
        assert lost, f"no intent lost with default sync: {verdict['anomalies'][:5]}"
        assert "disk" in next(iter(effects.values()))["effects"]  # faultfs dropped unsynced bytes
    else:
        assert not lost, lost[:5]
        assert verdict["valid"] is True, verdict["anomalies"][:5]


WINDOWS = {
    # NATS refused for most of the load, so agents journal every decision (an fsynced append each).
    "fixed": """\
name: agent-disk-windows
topology: {agents: 3, disk: {agent-1: faultfs}}
load: {rate: 20, duration: 16s}
faults:
  - {at: 1s, for: 13s, fault: outage, target: nats, mode: refuse}
  - {at: 3s, for: 3s, fault: disk-slow, target: agent-1, delay: 200ms}
  - {at: 8s, for: 3s, fault: disk-full, target: agent-1}
expect: {recovery: {drained_within: 30s}}
""",
    # The random nemesis drawing disk kinds on the node that is on faultfs, NATS down behind them.
    "random": """\
name: agent-disk-random
seed: 18
topology: {agents: 3, disk: {agent-1: faultfs}}
load: {rate: 20, duration: 16s}
faults:
  - {at: 1s, for: 13s, fault: outage, target: nats, mode: refuse}
random: {at: 2s, for: 10s, interval: 4s, duration: 3s, faults: [disk-slow, disk-full], targets: [agent-1]}
expect: {recovery: {drained_within: 30s}}
""",
}


@pytest.mark.parametrize("plan", WINDOWS)
def test_disk_full_and_disk_slow_bite_and_nothing_accepted_is_lost(
    images: Images, tmp_path: Path, plan: str
) -> None:
    """agent-1's journal on faultfs: a slow fsync delays its 202s, a full disk fails its appends (it answers
    500, an unknown outcome, never a 202 it could not journal). Each window shows its disk sign (faultfs
    counted the calls it slowed or failed), and nothing the agents accepted is lost."""
    text = WINDOWS[plan]
    path = tmp_path / f"{text.split()[1]}.yaml"  # the file is named as the scenario
    path.write_text(text)
    ((_, scenario),) = load_scenarios(path)
    result = asyncio.run(run_scenario(scenario, images=images, reports=tmp_path / "reports", source=path))
    verdict = result.verdict
    kinds = {a["kind"] for a in verdict["anomalies"]}
    assert not kinds & {"lost", "no-effect", "duplicate", "unprojected"}, verdict["anomalies"][:5]
    faults = verdict["checks"]["effects"]["faults"]
    disk = {fid: f for fid, f in faults.items() if f["fault"] in ("disk-slow", "disk-full")}
    assert {f["fault"] for f in disk.values()} == {"disk-slow", "disk-full"}, faults
    for fid, f in disk.items():
        assert "disk" in f["effects"], (fid, f)


KILLED = """\
name: killed-on-faultfs
topology: {agents: 3, disk: faultfs}
load: {rate: 10, duration: 60s}
"""


@pytest.mark.parametrize("killed", ["harness", "session"])
def test_a_killed_harness_leaves_no_faultfs_mount(tmp_path: Path, killed: str) -> None:
    """`harness`: only the harness's process is SIGKILLed; each faultfs daemon sees its parent gone and
    unmounts by itself. `session`: its whole process group, daemons too (a CI job cancelled); their mounts
    stay, answering ENOTCONN, until `solar-chaos clean` unmounts them."""
    path = tmp_path / "killed-on-faultfs.yaml"
    path.write_text(KILLED)
    out = (tmp_path / "out.txt").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "harness.cli", "run", str(path), "--reports", str(tmp_path / "reports")]
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        mine = lambda: [m for m in faultfs_mounts() if m.owner.split(":")[1:2] == [str(proc.pid)]]  # noqa: E731
        # Every node that keeps data: NATS, SurrealDB, three agents; then the load is under way.
        wait_until(lambda: len(mine()) == 5, "the harness's five faultfs mounts", timeout=120)
        run_id = mine()[0].run_id
        said = tmp_path / "out.txt"
        wait_until(
            lambda: "system up in" in said.read_text(), "the system up, the load starting", timeout=120
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL) if killed == "harness" else os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    gone = lambda: not [m for m in faultfs_mounts() if m.run_id == run_id]  # noqa: E731
    if killed == "harness":
        # Each daemon notices its parent gone (polled) and unmounts; clean is not needed for that.
        wait_until(gone, "the run's mounts gone", timeout=20)
    else:
        assert not gone()
    assert (runs_state_dir() / run_id).exists()  # the host directory stays until clean
    clean = subprocess.run(
        [sys.executable, "-m", "harness.cli", "clean"], capture_output=True, text=True, env=env
    )
    assert clean.returncode == 0, clean.stderr
    assert f"removed {runs_state_dir() / run_id}" in clean.stdout
    assert gone()
    assert not (runs_state_dir() / run_id).exists()
    wait_until(lambda: not engine.list_runs(run_id), f"run {run_id}'s containers gone", timeout=60)
