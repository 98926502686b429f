"""topology.disk, topology.nats.sync_interval, the disk faults and expected_failures in the scenario model;
the effects checker's signs for the disk faults; NATS's config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness.checkers import judge
from harness.scenario import PowerLossFault, Scenario, load_scenarios
from harness.topology.services import nats_config
from tests.unit.rundirs import RunDir


def scenario(**fields: Any) -> Scenario:
    return Scenario.model_validate({"name": "s", "load": {"rate": 5, "duration": "60s"}, **fields})


def test_no_disk_puts_nothing_on_faultfs() -> None:
    assert scenario().topology.faultfs_nodes == ()


def test_faultfs_alone_means_every_node_that_keeps_data() -> None:
    assert scenario(topology={"agents": 2, "disk": "faultfs"}).topology.faultfs_nodes == (
        "nats",
        "surrealdb",
        "agent-1",
        "agent-2",
    )


def test_a_node_of_its_own_wins_over_its_group() -> None:
    topo = scenario(
        topology={"disk": {"agents": "faultfs", "agent-2": "container", "nats": "faultfs"}}
    ).topology
    assert topo.faultfs_nodes == ("nats", "agent-1", "agent-3")


def test_an_agent_beyond_the_topology_is_refused() -> None:
    with pytest.raises(ValidationError, match="not in the topology"):
        scenario(topology={"agents": 3, "disk": {"agent-5": "faultfs"}})


@pytest.mark.parametrize(("written", "config"), [("default", None), ("always", "always"), ("2s", "2000ms")])
def test_sync_interval(written: str, config: str | None) -> None:
    assert scenario(topology={"nats": {"sync_interval": written}}).topology.nats.config_value() == config


def test_nats_config_sets_only_sync_interval() -> None:
    assert (
        nats_config("always")
        == "# written by solar-chaos for one run\njetstream {\n  sync_interval: always\n}\n"
    )


def test_a_power_loss_takes_one_node_or_several() -> None:
    one = scenario(topology={"disk": "faultfs"}, faults=[{"at": 1, "fault": "power-loss", "targets": "nats"}])
    fault = one.faults[0]
    assert isinstance(fault, PowerLossFault) and fault.targets == ["nats"] and fault.stop_at == 2.0
    many = scenario(
        topology={"disk": "faultfs"},
        faults=[{"at": 1, "for": 3, "fault": "power-loss", "targets": ["agent-1", "agent-2"]}],
    )
    assert many.faults[0].targets == ["agent-1", "agent-2"] and many.faults[0].stop_at == 4.0
    with pytest.raises(ValidationError, match="appears twice"):
        scenario(
            topology={"disk": "faultfs"},
            faults=[{"at": 1, "fault": "power-loss", "targets": ["nats", "nats"]}],
        )


def test_disk_faults_need_their_node_on_faultfs() -> None:
    with pytest.raises(ValidationError, match="nats's data is not on faultfs"):
        scenario(faults=[{"at": 1, "for": 1, "fault": "disk-full", "target": "nats"}])
    ok = scenario(
        topology={"disk": {"nats": "faultfs"}},
        faults=[
            {
                "at": 1,
                "for": 1,
                "fault": "disk-slow",
                "target": "nats",
                "delay": "200ms",
                "path": "/jetstream",
            }
        ],
    )
    assert ok.faults[0].delay == 0.2


MATRIX_FILE = """\
name: npl
topology: {disk: {nats: faultfs}}
load: {rate: 5, duration: 60s}
faults: [{at: 5s, fault: power-loss, targets: nats}]
matrix:
  topology.nats.sync_interval: [default, always]
expected_failures:
  - when: {topology.nats.sync_interval: default}
    anomalies: [lost]
    reason: the bug
"""


def test_an_expected_failure_matches_its_parameter_set_only(tmp_path: Path) -> None:
    path = tmp_path / "npl.yaml"
    path.write_text(MATRIX_FILE)
    sets = dict(load_scenarios(path))
    default, always = sets["sync_interval=default"], sets["sync_interval=always"]
    assert default.expected_failure is not None and default.expected_failure.anomalies == ["lost"]
    assert default.resolved()["expected_failure"] == {"anomalies": ["lost"], "reason": "the bug"}
    assert always.expected_failure is None and "expected_failure" not in always.resolved()
    assert always.resolved()["topology"]["nats"] == {"nodes": 1, "replicas": 1, "sync_interval": "always"}


def test_an_expected_failure_value_outside_the_matrix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "npl.yaml"
    path.write_text(MATRIX_FILE.replace("sync_interval: default}", "sync_interval: 5s}"))
    with pytest.raises(
        Exception, match=r"npl.yaml:8: .*5s is not among its values; allowed: default, always"
    ):
        load_scenarios(path)


# The effects checker: which signs a disk fault counts (docs/run-format.md, "Effects, by fault kind").


def effects(run: RunDir, tmp_path: Path) -> dict[str, Any]:
    verdict = judge(run.write(tmp_path))
    return verdict["checks"]["effects"]["faults"]


def quiet_run() -> RunDir:
    run = RunDir()
    for i in range(40):
        run.intent(f"c{i}", 1.0 + i * 0.5)
    return run


def test_a_power_loss_bites_by_its_nodes_down_and_its_bytes_dropped(tmp_path: Path) -> None:
    run = quiet_run()
    evidence = {
        "nodes": {"nats": {"state": "exited", "lost_bytes": 4096, "lost_files": 2}},
        "lost_bytes": 4096,
    }
    run.start("f1", 5.0, "power-loss", evidence=evidence, target={"nodes": ["nats"]}).stop(
        "f1", 7.0, "power-loss"
    )
    found = effects(run, tmp_path)["f1"]["effects"]
    assert found["container"] == "the nemesis saw nats exited"
    assert found["disk"] == "faultfs dropped 4096 unsynced bytes"


def test_a_disk_error_bites_by_the_calls_failed_its_stop_line_counts(tmp_path: Path) -> None:
    run = quiet_run()
    run.start("f1", 5.0, "disk-error", evidence={"active": {}}, target={"node": "nats"})
    run.stop("f1", 7.0, "disk-error", evidence={"calls": {"failed_fsync": 3, "fsyncs": 3}, "failed": 3})
    assert effects(run, tmp_path)["f1"]["effects"] == {"disk": "faultfs failed 3 calls with EIO"}


def test_a_disk_fault_that_met_no_call_is_no_effect(tmp_path: Path) -> None:
    run = quiet_run()
    run.start("f1", 5.0, "disk-slow", target={"node": "nats"})
    run.stop("f1", 7.0, "disk-slow", evidence={"calls": {}, "failed": 0})
    verdict = judge(run.write(tmp_path))
    assert [a["kind"] for a in verdict["anomalies"]] == ["no-effect"]
    assert "answers, latency, buffer, backlog, disk" in verdict["anomalies"][0]["detail"]


# Where FUSE cannot work, a scenario that needs faultfs is refused by `run` and skipped by pytest.

NEEDS_FAULTFS = """\
name: needs
topology: {disk: {nats: faultfs}}
load: {rate: 5, duration: 10s}
"""


def test_run_refuses_a_scenario_needing_faultfs_where_fuse_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness import cli
    from harness.topology import disks

    monkeypatch.setattr(disks, "fuse_problem", lambda: "no /dev/fuse: load the fuse module (modprobe fuse)")
    path = tmp_path / "needs.yaml"
    path.write_text(NEEDS_FAULTFS)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot run here: needs faultfs (topology.disk: nats): no /dev/fuse: load the fuse module" in err


def test_pytest_skips_a_scenario_needing_faultfs_where_fuse_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from harness.paths import ROOT

    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "needs.yaml").write_text(NEEDS_FAULTFS)
    # A fake /dev/fuse path is not possible; PATH without fusermount3 is: fuse_problem names it.
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-rs", "-p", "no:cacheprovider", folder],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert "1 skipped" in r.stdout, r.stdout[-2000:]
    assert "needs faultfs (topology.disk: nats): no fusermount3" in r.stdout


def test_clean_removes_the_host_directories_of_dead_runs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folders the harness made (RunDisks: named by the run id, with its marker); more cases, other
    people's folders and links among them, in tests/unit/test_clean_dirs.py."""
    from harness.engine import new_run_id, owner_token
    from harness.topology.disks import MARKER, OWNER, RunDisks, remove_dead_dirs

    monkeypatch.setenv("SOLAR_CHAOS_STATE", str(tmp_path))
    alive, dead, unowned = (RunDisks(new_run_id()) for _ in range(3))
    for d in (alive, dead, unowned):
        d.file("nats/backing/x", "")
    host = owner_token().split(":")[0]
    (dead.dir / OWNER).write_text(f"{host}:999999999:1")  # no such pid
    (unowned.dir / OWNER).unlink()
    theirs = tmp_path / "someone-elses"
    theirs.mkdir()
    assert (alive.dir / MARKER).read_text().strip() == alive.run_id
    assert remove_dead_dirs() == sorted([dead.dir, unowned.dir])
    assert alive.dir.exists() and not dead.dir.exists() and not unowned.dir.exists()
    assert remove_dead_dirs(everything=True) == [alive.dir]
    assert theirs.exists()
