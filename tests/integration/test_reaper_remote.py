"""A run's reaper on every engine of another host (issue 32, harness/topology/fleet.py): this machine's reaper
sees only this machine's engine, so a harness killed during a run over `tcp://` engines would leave its
containers, overlays and volumes there. Two stand-in engines play the other hosts, named by their
`tcp://` addresses as real hosts are (not `standin-N`, which are removed whole with the run and need no
reaper). The kill is the harness's connections to its reapers dropping without a teardown, as a SIGKILL
drops them."""

from __future__ import annotations

import pytest

from harness import engine
from harness.shape import node_names
from harness.topology.docker import DockerRun
from harness.topology.engines import LocalEngines
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
