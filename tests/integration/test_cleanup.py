"""Nothing a run makes outlives it: the reaper removes what a killed harness left,
and `solar-chaos clean` removes what belongs to runs no longer alive."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import docker.errors
import pytest
import requests

from harness import engine
from harness.cli import main as cli
from harness.paths import ROOT
from harness.waiting import wait_until

pytestmark = pytest.mark.docker

HARNESS_THAT_GETS_KILLED = textwrap.dedent(
    """
    import signal, sys
    from harness.images import Images
    from harness.topology.docker import DockerRun
    from harness.topology.services import NATS

    run = DockerRun(Images(sys.argv[1])).__enter__()
    NATS.define(run, run.network("data"))
    run.start()
    print(run.run_id, run.reaper.port, flush=True)
    signal.pause()  # until killed
    """
)


def start_harness(images, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, int]:
    """A harness process with one run (NATS on one network) that waits to be killed: it, its run id, and
    its reaper's port on 127.0.0.1."""
    env = {**os.environ, "RYUK_RECONNECTION_TIMEOUT": "2s", "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS_THAT_GETS_KILLED, images.mode.value],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    said = proc.stdout.readline().split()
    if len(said) != 2:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the child harness did not start its run: {said}")
    return proc, said[0], int(said[1])


def test_a_harness_killed_mid_run_leaves_nothing(images) -> None:
    proc, run_id, _port = start_harness(images)
    try:
        res = engine.list_runs(run_id)[run_id]
        assert len(res.containers) == 1 and len(res.networks) == 1
    finally:
        proc.kill()
        proc.wait()
    wait_until(
        lambda: not engine.list_runs(run_id),
        f"the reaper to remove run {run_id}'s container and network",
        timeout=60,
        interval=0.5,
    )


def ask_reaper(port: int, line: str) -> bytes:
    """What the reaper answers a line, on a fresh connection, and that it then closes that connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(line.encode() + b"\n")
        with s.makefile("rb") as f:
            answer = f.readline()
            assert f.read() == b"", f"the reaper kept the connection open after {line!r}"
    return answer


def test_the_reaper_takes_no_filter_but_its_runs_and_removes_nothing_else(images) -> None:
    """Anyone on this host can reach the reaper's port: `status=running` (every running container of the
    engine), every run's label, another run's label, are each answered ERR, and when the harness dies the
    reaper removes its run and nothing else."""
    c = engine.client()
    other_run = engine.new_run_id() + "o"
    bystander = c.containers.run(images.ref("nats"), detach=True, labels={"test": "bystander"})
    other = c.containers.run(images.ref("nats"), detach=True, labels=engine.run_labels(other_run))
    proc = None
    try:
        proc, run_id, port = start_harness(images)
        for line in (
            "status=running",
            f"label={engine.RUN_LABEL}",
            f"label={engine.RUN_LABEL}={other_run}",
            "label=org.testcontainers=true",
            f"label={engine.RUN_LABEL}={run_id}&status=running",
        ):
            answer = ask_reaper(port, line)
            assert (
                answer.startswith(b"ERR ") and f"only label={engine.RUN_LABEL}={run_id}".encode() in answer
            ), (
                line,
                answer,
            )
        proc.kill()
        proc.wait()
        wait_until(lambda: not engine.list_runs(run_id), f"the reaper to remove run {run_id}", timeout=60)
        for ctr in (bystander, other):
            ctr.reload()
            assert ctr.status == "running", f"the reaper touched {ctr.name}, which is not its run's"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for ctr in (bystander, other):
            try:
                ctr.remove(force=True)
            except Exception:
                pass


def test_the_reapers_port_is_on_loopback_only(images) -> None:
    """Published on 127.0.0.1 like every port of the harness: no address of this host but loopback
    reaches it (the engine's bridges' gateways included)."""
    import psutil

    from harness.topology.docker import DockerRun
    from harness.topology.reaper import REAPER_PORT

    with DockerRun(images) as run:
        port = run.reaper.port
        bindings = engine.client().containers.get(run.reaper.name).attrs["HostConfig"]["PortBindings"]
        assert bindings == {f"{REAPER_PORT}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # reachable where it should be
        tried = []
        for nic, addrs in psutil.net_if_addrs().items():
            for a in addrs:
                if a.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                host = a.address.split("%")[0]
                if ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_link_local:
                    continue
                tried.append(f"{nic} {host}")
                with pytest.raises(OSError):
                    socket.create_connection((host, port), timeout=2).close()
        assert tried, "this host has no address but loopback: nothing to try"


def test_clean_removes_dead_runs_and_keeps_live_ones(capsys) -> None:
    c = engine.client()
    # pid_max is at most 2**22 on Linux, so this owner is a process that cannot be alive.
    dead_owner = f"{engine.owner_token().split(':')[0]}:{2**22 + 7}:1"
    dead_run, live_run = engine.new_run_id() + "d", engine.new_run_id() + "l"
    nets = [
        c.networks.create(
            f"sc-{dead_run}", labels={engine.RUN_LABEL: dead_run, engine.OWNER_LABEL: dead_owner}
        ),
        c.networks.create(f"sc-{live_run}", labels=engine.run_labels(live_run)),
    ]
    try:
        assert cli(["clean"]) == 0
        assert dead_run not in engine.list_runs(), "clean must remove a dead run's network"
        assert live_run in engine.list_runs(), "clean must keep a live run's network"
        assert "kept 1 runs still alive" in capsys.readouterr().out
    finally:
        for n in nets:
            try:
                n.remove()
            except Exception:
                pass


def test_list_runs_skips_a_container_removed_while_it_lists(images, monkeypatch) -> None:
    """A run's teardown or its reaper removes containers while `clean`, `doctor` or a test lists them:
    the engine lists ids, then inspects each, and one gone in between must not fail the listing."""
    c = engine.client()
    run_id = engine.new_run_id() + "r"
    gone = c.containers.create(images.ref("nats"), labels=engine.run_labels(run_id))
    kept = c.containers.create(images.ref("nats"), labels=engine.run_labels(run_id))
    real_get = type(c.containers).get

    def removed_first(self, container_id):  # the reaper's removal lands between list and inspect
        if container_id == gone.id:
            gone.remove(force=True)
        return real_get(self, container_id)

    monkeypatch.setattr(type(c.containers), "get", removed_first)
    try:
        runs = engine.list_runs(run_id)
        assert [ctr.id for ctr in runs[run_id].containers] == [kept.id]
    finally:
        for ctr in (gone, kept):
            try:
                ctr.remove(force=True)
            except Exception:
                pass


def test_clean_waits_out_the_reaper_removing_the_same_container(images, monkeypatch) -> None:
    """`clean` run about when the killed harness's reaper removes the run (10 s after the kill) meets
    "removal of container ... is already in progress" (409): that container is going, not a failure."""
    c = engine.client()
    run_id = engine.new_run_id() + "b"
    ctr = c.containers.create(images.ref("nats"), labels=engine.run_labels(run_id))
    net = c.networks.create(f"sc-{run_id}", labels=engine.run_labels(run_id))
    net.connect(ctr)
    real_remove = type(ctr).remove
    reaper = threading.Timer(0.5, real_remove, args=(ctr,), kwargs={"force": True, "v": True})

    def reaper_first(self, **kwargs):  # the reaper's removal started just before ours
        if self.id == ctr.id and not reaper.is_alive() and not reaper.finished.is_set():
            reaper.start()
        if reaper.is_alive():
            response = requests.Response()
            response.status_code = 409
            raise docker.errors.APIError(
                "409 Client Error: Conflict",
                response=response,
                explanation=f"removal of container {self.id} is already in progress",
            )
        return real_remove(self, **kwargs)

    monkeypatch.setattr(type(ctr), "remove", reaper_first)
    try:
        assert engine.remove_run(engine.list_runs(run_id)[run_id]) == []
        assert not engine.list_runs(run_id)
    finally:
        reaper.join()
        for thing in (ctr, net):
            try:
                thing.remove()
            except Exception:
                pass


FAULTFS_HARNESS = textwrap.dedent(
    """
    import sys, time
    from harness.faultfs.control import FaultFS
    fs = FaultFS.start(sys.argv[1], sys.argv[2], run_id=sys.argv[3])
    print(fs.proc.pid, flush=True)
    time.sleep(600)
    """
)


def test_clean_unmounts_the_faultfs_mount_of_a_killed_run_and_doctor_flags_it(tmp_path, capsys) -> None:
    """A run's host mount (faultfs, labelled faultfs:<run id>:<owner>) whose harness and daemon were both
    SIGKILLed stays mounted (ENOTCONN): `doctor` names it, `clean` unmounts it."""
    from harness.faultfs.control import faultfs_mounts, fuse_problem

    assert fuse_problem() is None, fuse_problem()
    mnt, run_id = str(tmp_path / "m"), engine.new_run_id() + "f"
    child = subprocess.Popen(
        [sys.executable, "-c", FAULTFS_HARNESS, str(tmp_path / "b"), mnt, run_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        daemon = int(child.stdout.readline())
        os.kill(daemon, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert [m.run_id for m in faultfs_mounts() if m.mountpoint == mnt] == [run_id]
    cli(["doctor"])
    assert f"faultfs mounts of runs no longer alive: {mnt}" in capsys.readouterr().out
    assert cli(["clean"]) == 0
    assert f"run {run_id}: unmounted faultfs {mnt}" in capsys.readouterr().out
    assert not [m for m in faultfs_mounts() if m.mountpoint == mnt], "clean left the faultfs mount"
