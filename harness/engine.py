"""The Docker engine: connecting, describing it, labelling what a run makes, and
removing what runs that are no longer alive left behind (`solar-chaos clean`)."""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import docker.errors

import docker
from harness.errors import EngineUnavailable

RUN_LABEL = "solar-chaos.run"
OWNER_LABEL = "solar-chaos.owner"
NODE_LABEL = "solar-chaos.node"  # which node of the system under test a container is (its events are judged)
LOAD_LABEL = "solar-chaos.load"  # which Locust worker of the run a container is (not judged: the load's own)
FIX_ENGINE = "make engine   (or: sudo scripts/ensure-engine.sh)"


@lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    """One client per process; raises EngineUnavailable with the fix when none answers."""
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except docker.errors.DockerException as e:
        raise EngineUnavailable(f"no Docker engine answers ({e}); fix: {FIX_ENGINE}") from e
    return c


@dataclass(frozen=True)
class EngineInfo:
    version: str
    api_version: str
    storage_driver: str
    cgroup_version: str


def engine_info() -> EngineInfo:
    c = client()
    info = c.info()
    ver = c.version()
    return EngineInfo(
        version=ver.get("Version", "?"),
        api_version=ver.get("ApiVersion", "?"),
        storage_driver=info.get("Driver", "?"),
        cgroup_version=str(info.get("CgroupVersion", "?")),
    )


# What new_run_id() makes, with room for the suffix tests and benches add ("-floor"); `clean` takes a host
# folder for a run's only when its name has this shape (and it holds the harness's marker).
RUN_ID_PATTERN = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}[a-z0-9-]{0,32}")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def is_run_id(text: str) -> bool:
    return RUN_ID_PATTERN.fullmatch(text) is not None


def _proc_start_ticks(pid: int) -> str | None:
    """A process's start time in clock ticks: with the pid it names one process,
    even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after it are plain.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_proc_start_ticks(pid) or '?'}"


def owner_alive(token: str) -> bool:
    """True when the process that made a resource still runs, or lives on another
    host (which we cannot see, so we must not touch its resources)."""
    try:
        host, pid_s, ticks = token.split(":")
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    return _proc_start_ticks(pid) == ticks


def run_labels(run_id: str) -> dict[str, str]:
    """The labels every container, network and volume of a run carries."""
    return {RUN_LABEL: run_id, OWNER_LABEL: owner_token()}


@dataclass
class RunResources:
    run_id: str
    owner: str
    containers: list = field(default_factory=list)
    networks: list = field(default_factory=list)
    volumes: list = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return owner_alive(self.owner)

    def count(self) -> int:
        return len(self.containers) + len(self.networks) + len(self.volumes)


def list_runs(run_id: str | None = None, on: docker.DockerClient | None = None) -> dict[str, RunResources]:
    """Everything labelled by solar-chaos on this engine (or the engine `on`), grouped by run."""
    c = on or client()
    flt = {"label": f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL}
    runs: dict[str, RunResources] = {}

    def entry(labels: dict[str, str]) -> RunResources:
        rid = labels.get(RUN_LABEL, "?")
        if rid not in runs:
            runs[rid] = RunResources(rid, labels.get(OWNER_LABEL, ""))
        return runs[rid]

    # A container removed between the engine's listing and its inspect (a run's teardown, its reaper) is
    # skipped, not a failure of the listing.
    for ctr in c.containers.list(all=True, filters=flt, ignore_removed=True):
        entry(ctr.labels).containers.append(ctr)
    for net in c.networks.list(filters=flt):
        entry(net.attrs.get("Labels") or {}).networks.append(net)
    for vol in c.volumes.list(filters=flt):
        entry(vol.attrs.get("Labels") or {}).volumes.append(vol)
    return runs


BUSY_WAIT_S = 30.0  # how long a removal waits out another party's (the reaper's) removal of the same thing


def _remove(kind: str, name: str, remove: Callable[[], object]) -> str | None:
    """Remove one resource; None when it is gone. A conflict (409: another party, the killed harness's
    reaper, is removing it already; a volume still in use) or a network whose endpoints are still being
    removed is waited out until BUSY_WAIT_S: it ends with the resource gone, not a failure of clean."""
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            remove()
            return None
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as e:
            # "in use by task": a Swarm's overlay still holds the attachment of a container just removed
            words = ("active endpoints", "in use by task")
            busy = e.status_code == 409 or any(w in str(e.explanation) for w in words)
            if not busy or time.monotonic() >= deadline:
                return f"{kind} {name}: {e.explanation}"
        time.sleep(0.25)


def remove_run(res: RunResources) -> list[str]:
    """Remove a run's containers, then its networks and volumes. Returns what failed."""
    problems = [
        _remove("container", c.name, lambda c=c: c.remove(force=True, v=True)) for c in res.containers
    ]
    problems += [_remove("network", n.name, n.remove) for n in res.networks]
    problems += [_remove("volume", v.name, lambda v=v: v.remove(force=True)) for v in res.volumes]
    return [p for p in problems if p]
