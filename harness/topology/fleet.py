"""The engines one run's containers live on (issue 32, docs/scale.md): this machine's engine, as always, or
several joined in a Swarm, each node on the engine its placement names (harness/topology/placement.py).

An engine of the fleet is a `Target`: its API client, the address its ports are published on and the
address this machine reaches them at, and whether it is this machine's own engine (only then do host
paths, the cgroup freezer and the process table of the harness's host reach into its containers).
`standin-N` engines are dockerds in containers of this machine's engine (harness/topology/engines.py),
started for the run and removed with it: the way to run a placement on one machine."""

from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import docker.errors

import docker
from harness import engine
from harness.errors import TopologyError
from harness.images import Images
from harness.topology.engines import LocalEngines, send_image
from harness.topology.placement import LOCAL, Placement
from harness.topology.reaper import REAPER_ROLE, RunReaper

log = logging.getLogger(__name__)

STANDIN = re.compile(r"standin-([1-9])")


@dataclass
class Target:
    """One engine of a run."""

    name: str  # as the placement names it: local, standin-2, tcp://h3:2376
    client: docker.DockerClient
    publish_ip: str  # where its containers' ports are bound
    reach_ip: str  # where this machine connects to them
    environment: dict[str, str]  # DOCKER_HOST and its TLS settings, for a client of its own (testcontainers')
    local: bool  # this machine's own engine
    loaded: set[str] = field(default_factory=set)  # image ids sent to it (send_image)

    def swarm_state(self) -> str:
        return str(self.client.info().get("Swarm", {}).get("LocalNodeState", "inactive"))

    def is_manager(self) -> bool:
        return bool(self.client.info().get("Swarm", {}).get("ControlAvailable"))


def _local() -> Target:
    return Target(LOCAL, engine.client(), "127.0.0.1", "127.0.0.1", {}, local=True)


def target_of(url: str) -> Target:
    """The engine a hosts file names by `url` (not a stand-in: those start with a run), connected."""
    return _local() if url == LOCAL else connect(url)


def connect(url: str) -> Target:
    """Another engine: `tcp://host:port` (TLS with the certificates of DOCKER_CERT_PATH when
    DOCKER_TLS_VERIFY is set, as Docker's own CLI does) or `ssh://[user@]host` (the ssh binary): its
    containers' ports are published on the host's address, which this machine must reach; or
    `unix:///path` (another engine of this machine: ports on 127.0.0.1, host paths reach its containers)."""
    if url.startswith("unix://"):
        ip, here = "127.0.0.1", True
    else:
        host = urlsplit(url).hostname or ""
        try:
            ip, here = socket.gethostbyname(host), False
        except OSError as e:
            raise TopologyError(f"engine {url}: {host!r} does not resolve ({e})") from None
    env = {k: v for k, v in os.environ.items() if k in ("DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")}
    env["DOCKER_HOST"] = url
    try:
        client = docker.from_env(environment=env, timeout=120, use_ssh_client=url.startswith("ssh://"))
        client.ping()
    except docker.errors.DockerException as e:
        raise TopologyError(f"engine {url} does not answer: {e}") from None
    return Target(url, client, ip, ip, env, local=here)


class Fleet:
    """The run's engines: after `start()`, stand-ins started and in
    their Swarm, remote engines answering and in one; `fleet.target(node)` is where a node runs. One engine
    (no placement, or one naming only `local`): this machine's, exactly as before issue 32."""

    def __init__(self, placement: Placement | None, run_id: str, images: Images) -> None:
        self.placement = placement
        self.run_id = run_id
        self.images = images
        self.targets: dict[str, Target] = {}
        self._standins: LocalEngines | None = None
        self._reapers: list[RunReaper] = []  # one on each engine but this machine's and the stand-ins

    @property
    def several(self) -> bool:
        return self.placement is not None and self.placement.several

    def target(self, node: str) -> Target:
        if not self.several:
            return self.targets[LOCAL]
        return self.targets[self.placement.engine_of(node)]  # type: ignore[union-attr]

    def start(self) -> None:
        self.targets[LOCAL] = _local()
        if not self.several:
            return
        names = list(self.placement.engines)  # type: ignore[union-attr]
        standins = [n for n in names if STANDIN.fullmatch(n)]
        if standins and len(standins) != len(names):
            raise TopologyError(
                f"engines {', '.join(names)}: stand-in engines run in a Swarm of their own, which "
                f"{', '.join(n for n in names if n not in standins)} cannot join: place every node on "
                "standin-N engines, or none"
            )
        if standins:
            count = max(int(STANDIN.fullmatch(n).group(1)) for n in standins)  # type: ignore[union-attr]
            # The run's reaper on this machine's engine watches the engine containers, so it is theirs too.
            self._standins = LocalEngines(count, self.run_id, self.images, overlay=None, reaper=False).start()
            for n in standins:
                e = self._standins[int(STANDIN.fullmatch(n).group(1)) - 1]  # type: ignore[union-attr]
                # Published on every address of the engine's container: its bridge one, this machine's only.
                self.targets[n] = Target(n, e.client, "0.0.0.0", e.ip, {"DOCKER_HOST": e.url}, local=False)
            return
        for n in names:
            if n != LOCAL:
                self.targets[n] = connect(n)
        self._check_swarm([self.targets[n] for n in names])
        for n in names:
            if n != LOCAL:  # up before the run's first container there, or a killed harness leaves it
                self._reapers.append(self._reaper_on(self.targets[n]))

    def _reaper_on(self, target: Target) -> RunReaper:
        """The run's reaper on another host's engine (or another engine of this machine): this machine's
        reaper sees only this machine's engine. Stand-ins need none: they are containers of this machine's
        engine."""
        ref = self.images.ensure((REAPER_ROLE,))[REAPER_ROLE]
        send_image(target.client, ref, target.loaded, target.name)
        return RunReaper(self.run_id, ref, target.client, target.publish_ip, target.reach_ip).start()

    def _check_swarm(self, targets: list[Target]) -> None:
        """Every engine in a Swarm (the user's: docs/scale.md says how to make one), one of them a manager."""
        out = [t.name for t in targets if t.swarm_state() != "active"]
        if out:
            raise TopologyError(
                f"engine(s) {', '.join(out)} not in a Swarm: a run over several engines needs them joined "
                "in one (docker swarm init on one, docker swarm join on the others; docs/scale.md)"
            )
        if not any(t.is_manager() for t in targets):
            raise TopologyError(
                f"none of {', '.join(t.name for t in targets)} is a Swarm manager: one must be, to make the "
                "run's overlay networks"
            )

    @property
    def manager(self) -> Target:
        """An engine of the run that can make Swarm-scoped (overlay) networks."""
        for t in self.targets.values():
            if t.name in (self.placement.engines if self.placement else ()) and t.is_manager():
                return t
        raise TopologyError("no engine of the run is a Swarm manager")

    def clients(self) -> dict[str, docker.DockerClient] | None:
        """Each engine's client by name, over several engines; None on this machine's alone."""
        return {n: t.client for n, t in self.targets.items() if n != LOCAL} if self.several else None

    def ensure_image(self, target: Target, ref: str) -> None:
        """The image `ref` of this machine's engine present on `target` (sent once per image id)."""
        if target.name != LOCAL:
            send_image(target.client, ref, target.loaded, target.name)

    def close(self) -> list[str]:
        """Remove what the run left on each engine but this machine's (which the caller's run removes): the
        stand-in engines whole (everything in them goes with them); on other hosts the containers and volumes
        on each engine, then the overlays on a manager (a worker may not remove them). Returns what could
        not be removed."""
        problems: list[str] = []
        if self._standins is not None:
            try:
                self._standins.close()
            except TopologyError as e:
                problems.append(str(e))
            self._standins = None
        elif self.several:
            problems = self._remove_remote()
        for reaper in self._reapers:
            reaper.close()  # what could not be removed, each reaper removes after its grace period
        self._reapers.clear()
        for t in self.targets.values():
            if t.name != LOCAL:
                t.client.close()
        self.targets.clear()
        return problems

    def _remove_remote(self) -> list[str]:
        return remove_runs([t for t in self.targets.values() if t.name != LOCAL], self.run_id).problems


@dataclass
class Removed:
    """What remove_runs did: resources removed of each run (by run id and engine), runs kept, problems."""

    removed: list[tuple[str, str, int, int]] = field(default_factory=list)  # run, engine, removed, of
    kept: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def remove_runs(targets: list[Target], run_id: str | None = None, everything: bool = False) -> Removed:
    """Remove runs from the engines `targets`: the run `run_id`; else each run no longer alive (every run with
    `everything`). Containers and volumes on each engine first, then the overlays on a manager among them (a
    Swarm worker may not remove them)."""
    done = Removed()
    networks: dict[str, list] = {}
    for t in targets:
        try:
            runs = engine.list_runs(run_id, on=t.client)
            manager = t.is_manager()
        except docker.errors.DockerException as e:
            done.problems.append(f"engine {t.name}: {e}")
            continue
        for res in runs.values():
            if run_id is None and res.alive and not everything:
                done.kept.add(res.run_id)
                continue
            n = len(res.containers) + len(res.volumes)
            problems = engine.remove_run(
                engine.RunResources(res.run_id, res.owner, res.containers, [], res.volumes)
            )
            done.problems += problems
            if n:
                done.removed.append((res.run_id, t.name, n - len(problems), n))
            if manager:
                networks.setdefault(res.run_id, []).extend(res.networks)
    for rid, nets in networks.items():
        problems = engine.remove_run(engine.RunResources(rid, "", [], nets, []))
        done.problems += problems
        done.removed.append((rid, "its overlays", len(nets) - len(problems), len(nets)))
    return done
