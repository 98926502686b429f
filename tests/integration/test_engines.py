"""Several engines on this machine (issue 32): three dockerds in containers joined in a Swarm, whose
attachable overlay lets a container on engine 1 and one on engine 3 reach each other by name; a container
taken off the overlay cannot be reached; everything is gone afterwards and the host engine never joined a
Swarm. Prints the figures docs/scale.md records (bring-up, image load, round trips)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from harness import engine
from harness.images import Images
from harness.paths import ROOT
from harness.topology.engines import LocalEngines
from harness.waiting import wait_until
from tests.integration.reach import CONNECT, ECHO, ECHO_PORT, PING_PONG

pytestmark = pytest.mark.docker

IDLE = "import time\nwhile True: time.sleep(60)\n"
ROUND_TRIPS = 300


@pytest.fixture(scope="module")
def engines() -> Iterator[LocalEngines]:
    t0 = time.monotonic()
    with LocalEngines(3) as e:
        took = time.monotonic() - t0
        print(f"\nfigure: 3 engines up and joined in {took:.1f} s (privileged: {e.privileged})")
        yield e
    assert not engine.list_runs(e.run_id), "the engines' containers, volumes or bridge outlived the block"


def _python(e, name: str, script: str, network: str, image: str):
    return e.client.containers.run(
        image, ["python3", "-c", script], name=name, network=network, detach=True, remove=False
    )


def test_three_engines_reach_each_other_over_the_overlay_and_a_partition_holds(engines: LocalEngines) -> None:
    e1, e2, e3 = engines
    assert engine.client().info()["Swarm"]["LocalNodeState"] == "inactive"  # the host engine stays out
    nodes = e1.client.nodes.list()
    assert sorted(n.attrs["Status"]["State"] for n in nodes) == ["ready"] * 3
    assert sorted(n.attrs["Spec"]["Role"] for n in nodes) == ["manager", "worker", "worker"]
    assert {e.client.info()["Driver"] for e in engines} == {"overlay2"}

    base = Images().ref("base")
    t0 = time.monotonic()
    assert engines.load_image(e1, base) is True
    print(f"\nfigure: {base} loaded into engine1 in {time.monotonic() - t0:.1f} s")
    assert engines.load_image(e1, base) is False  # the same image id is not sent twice
    assert engines.load_image(e3, base) is True

    echo = _python(e1, "echo", ECHO, engines.overlay, base)
    peer = _python(e3, "peer", IDLE, engines.overlay, base)
    echo.reload()
    echo_ip = echo.attrs["NetworkSettings"]["Networks"][engines.overlay]["IPAddress"]

    def from_peer(script: str, *args: object) -> str:
        return peer.exec_run(["python3", "-c", script, *map(str, args)]).output.decode().strip()

    wait = time.monotonic() + 20
    while (got := from_peer(CONNECT, "echo", ECHO_PORT)) != "connected" and time.monotonic() < wait:
        time.sleep(0.2)  # the echo server's first instant; its container already runs
    assert got == "connected", f"engine3 could not reach engine1's container by name: {got}"
    across = json.loads(from_peer(PING_PONG, "echo", ECHO_PORT, ROUND_TRIPS))

    e1.client.networks.create("same-engine", driver="bridge")
    e1.client.networks.get("same-engine").connect(echo)
    local = e1.client.containers.run(
        base, ["python3", "-c", PING_PONG, "echo", str(ECHO_PORT), str(ROUND_TRIPS)], network="same-engine"
    )
    same = json.loads(local.decode())
    print(f"\nfigure: overlay engine3->engine1 {across}; same-engine bridge {same}")
    assert across["n"] == same["n"] == ROUND_TRIPS

    # A partition-like cut: echo leaves the overlay; engine3 can no longer reach its address.
    e1.client.networks.get(engines.overlay).disconnect(echo)
    assert from_peer(CONNECT, echo_ip, ECHO_PORT).startswith("failed")
    assert from_peer(CONNECT, "echo", ECHO_PORT).startswith("failed")


HARNESS_THAT_GETS_KILLED = textwrap.dedent(
    """
    import signal
    from harness.topology.engines import LocalEngines

    engines = LocalEngines(2).__enter__()
    print(engines.run_id, flush=True)
    signal.pause()  # until killed
    """
)


def test_engines_of_a_killed_harness_are_removed_by_its_reaper() -> None:
    env = {**os.environ, "RYUK_RECONNECTION_TIMEOUT": "2s", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS_THAT_GETS_KILLED], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert engine.is_run_id(run_id), f"the child harness did not bring its engines up: {run_id!r}"
        (res,) = engine.list_runs(run_id).values()
        assert (len(res.containers), len(res.volumes), len(res.networks)) == (2, 2, 1)
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: not engine.list_runs(run_id), f"run {run_id}'s engines removed by its reaper", 60, 0.5)
    assert engine.client().info()["Swarm"]["LocalNodeState"] == "inactive"
