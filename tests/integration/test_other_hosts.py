"""Engines of other hosts (issue 32): a run's reaper on each (harness/topology/fleet.py), `solar-chaos clean
--hosts FILE` over them, and `solar-chaos swarm FILE` making them one Swarm. This machine's reaper sees only
this machine's engine, so a harness killed during a run over `tcp://` engines would leave its containers,
overlays and volumes there. Stand-in engines play the other hosts, named by their `tcp://` addresses as
real hosts are (not `standin-N`, which are removed whole with the run and need no reaper). The kill is the
harness's connections to its reapers dropping without a teardown, as a SIGKILL drops them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness import engine
from harness.cli import main as cli
from harness.shape import node_names
from harness.topology.docker import DockerRun
from harness.topology.engines import LocalEngines, send_image
from harness.topology.placement import Host, place
from harness.topology.reaper import REAPER_LABEL
from harness.waiting import wait_until

# About a minute of stand-in engines: past CI's budget, so CI deselects it and nightly-scenarios.yml runs it
# (`make test` runs it for a user). docs/operations.md, "CI".
pytestmark = [pytest.mark.docker, pytest.mark.nightly]

GRACE_S = 10  # RYUK_RECONNECTION_TIMEOUT: how long a reaper waits for the harness to come back


def reapers_of(client, run_id: str) -> list:
    return client.containers.list(filters={"label": f"{REAPER_LABEL}={run_id}"})


def test_a_harness_gone_mid_run_leaves_nothing_on_other_hosts_engines(images) -> None:
    base = images.ensure(("base",))["base"]
    with LocalEngines(2, overlay=None, images=images) as hosts:
        e1, e2 = hosts[0], hosts[1]
        placement = place([Host(e1.url, ("toxiproxy",)), Host(e2.url, ("agents",))], node_names(1))
        run = DockerRun(images, placement=placement).__enter__()
        try:
            for e in (e1, e2):
                assert len(reapers_of(e.client, run.run_id)) == 1, f"no reaper of the run on {e.url}"
            net = run.network("agent-1")  # an overlay, made on e1 (the Swarm's manager)
            run.container("agent-1", base, network=net, command=["sleep", "600"])
            volume = e2.client.volumes.create(f"sc-{run.run_id}-data", labels=dict(run.labels))
            run.start("agent-1")
            left = engine.list_runs(run.run_id, on=e2.client)[run.run_id]
            assert left.containers and volume.name in [v.name for v in left.volumes]
            assert engine.list_runs(run.run_id, on=e1.client)[run.run_id].networks
        finally:
            # The harness is gone: its connections drop, nothing is removed by it.
            for reaper in [run.reaper, *run.fleet._reapers]:
                if reaper is not None:
                    reaper.close()

        def gone() -> bool:
            return not any(engine.list_runs(run.run_id, on=e.client) for e in (e1, e2))

        wait_until(gone, f"run {run.run_id}'s reapers to remove it from both hosts", GRACE_S + 30, 0.5)
        # and the reapers themselves leave (auto_remove) once done
        wait_until(
            lambda: not any(reapers_of(e.client, run.run_id) for e in (e1, e2)),
            "the reapers to exit",
            30,
            0.5,
        )


def test_clean_with_hosts_removes_dead_runs_from_other_hosts_engines_and_keeps_live_ones(
    images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`solar-chaos clean --hosts FILE`: what a run no longer alive left on the engines the file names."""
    base = images.ensure(("base",))["base"]
    dead = {engine.RUN_LABEL: "sc-deadrun", engine.OWNER_LABEL: f"{socket.gethostname()}:999999:0"}
    live = engine.run_labels("sc-liverun")  # this process: alive
    with LocalEngines(2, overlay=None, images=images) as hosts:
        e1, e2 = hosts[0], hosts[1]
        send_image(e2.client, base, e2.loaded, e2.name)
        for labels in (dead, live):
            e2.client.containers.create(base, ["sleep", "600"], labels=labels)
            e2.client.volumes.create(labels=labels)
        e1.client.networks.create("sc-deadrun-net", driver="overlay", attachable=True, labels=dead)
        path = tmp_path / "hosts.yaml"
        path.write_text(f"- engine: local\n- engine: {e1.url}\n- engine: {e2.url}\n  nodes: [agents]\n")

        assert cli(["clean", "--hosts", str(path)]) == 0
        said = capsys.readouterr().out
        assert f"run sc-deadrun on {e2.url}: removed 2 of 2" in said and e1.url not in said, said
        assert "run sc-deadrun on its overlays: removed 1 of 1" in said, said
        assert "kept " in said and "sc-liverun" not in said, said  # kept: this run and the stand-ins' own
        for e in (e1, e2):
            assert "sc-deadrun" not in engine.list_runs(on=e.client)
        assert engine.list_runs(on=e2.client)["sc-liverun"].count() == 2  # (--all would take it, and this
        # machine's live runs too: the stand-ins themselves)


def test_swarm_makes_the_hosts_engines_one_swarm_and_again_changes_nothing(
    images, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`solar-chaos swarm HOSTS.yaml` on two engines out of any Swarm (stand-ins that left theirs, named by
    their tcp:// addresses): one inits, the other joins; a run over them then passes the Swarm check."""
    with LocalEngines(2, overlay=None, images=images) as hosts:
        for e in hosts.engines:
            e.client.swarm.leave(force=True)
            assert e.client.info()["Swarm"]["LocalNodeState"] == "inactive"
        path = tmp_path / "hosts.yaml"
        path.write_text("".join(f"- engine: {e.url}\n" for e in hosts.engines))
        assert cli(["swarm", str(path)]) == 0
        said = capsys.readouterr().out
        e1, e2 = hosts.engines
        assert f"{e1.url}: Swarm made (manager, advertised at {e1.ip}:2377)" in said, said
        assert f"{e2.url}: joined as worker" in said, said
        assert {n.attrs["Status"]["Addr"] for n in e1.client.nodes.list()} == {e1.ip, e2.ip}
        assert cli(["swarm", str(path)]) == 0  # again: nothing to do
        again = capsys.readouterr().out
        assert "manages Swarm" in again and f"{e2.url}: in it already" in again, again
        placement = place([Host(e1.url), Host(e2.url, ("agents",))], node_names(1))
        with DockerRun(images, placement=placement) as run:  # the Swarm check passes, an overlay is made
            assert run.network("agent-1").name
