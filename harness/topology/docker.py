"""The Docker backend of a topology: one run's containers and networks.

Everything it makes carries the run's labels, is watched by the run's reaper (our image that
speaks Ryuk's protocol, or Ryuk) so a killed harness leaves nothing behind, and is removed by
the same object that made it when the `with` block ends.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness import engine
from harness.errors import TopologyError
from harness.images import Images
from harness.topology.fleet import Fleet
from harness.topology.placement import Placement
from harness.topology.ports import free_port
from harness.topology.reaper import RunReaper, configure_reaper

log = logging.getLogger(__name__)


def in_container(pid: int, container_id: str) -> bool:
    """Whether `pid`, a process of this machine, runs in that container: true only when the engine runs
    here, in this pid namespace (the process's cgroup names the container)."""
    try:
        return container_id in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def is_main_process(pid: int, container_id: str) -> bool:
    """Whether `pid` is that container's main process: in its cgroup and pid 1 of its pid namespace (whose
    death the kernel makes the death of every process of the container)."""
    if not in_container(pid, container_id):
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
    return nspid[-1:] == ["1"]


class Overlay:
    """A run's network over several engines: an attachable overlay of their Swarm, made on a manager; a
    container of any engine of the Swarm joins it by name (what testcontainers' Network is on one engine)."""

    def __init__(self, name: str, fleet: Fleet, labels: dict[str, str]) -> None:
        self.name = name
        self.fleet = fleet
        fleet.manager.client.networks.create(name, driver="overlay", attachable=True, labels=labels)


class DockerRun:
    """`with DockerRun(images) as run:` then `run.network(...)`, `run.container(...)`. With a `placement`
    naming several engines, each container runs on its node's engine and each network is an overlay across
    them (harness/topology/fleet.py)."""

    def __init__(self, images: Images, run_id: str | None = None, placement: Placement | None = None) -> None:
        self.images = images
        self.run_id = run_id or engine.new_run_id()
        self.labels = engine.run_labels(self.run_id)
        self.networks: dict[str, Network | Overlay] = {}
        self.containers: dict[str, DockerContainer] = {}
        self._host_ports: dict[tuple[str, int], int] = {}
        self.reaper: RunReaper | None = None
        self.fleet = Fleet(placement, self.run_id, images)

    def __enter__(self) -> DockerRun:
        engine.client()  # fail early, with the fix, when no engine answers
        # Up before the first network, or a crash now leaks it.
        self.reaper = RunReaper(self.run_id, configure_reaper(self.images)).start()
        try:
            self.fleet.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def network(self, name: str, internal: bool = False) -> Network | Overlay:
        """A labelled bridge network, `internal` ones with no route off the host; over several engines, an
        overlay across them."""
        self._require_reaper()
        if self.fleet.several:
            self.networks[name] = Overlay(f"sc-{self.run_id}-{name}", self.fleet, dict(self.labels))
            return self.networks[name]
        net = Network(docker_network_kw={"labels": dict(self.labels), "internal": internal})
        net.name = f"sc-{self.run_id}-{name}"
        net.create()
        self.networks[name] = net
        return net

    def container(
        self,
        name: str,
        image: str,
        *,
        network: Network | Overlay,
        aliases: list[str] | None = None,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        published: tuple[int, ...] = (),
        mounts: dict[str, tuple[str, str]] | None = None,
        **docker_kwargs: Any,
    ) -> DockerContainer:
        """Define (not start) a container. `published` ports are bound on 127.0.0.1 only (on another engine,
        on its address: fleet.py). `mounts`: container path -> (host path or volume name, "rw" or "ro"); on
        an engine of another host (or a stand-in) a host file is copied in before the container starts, a
        host folder cannot be (TopologyError), and a volume is the one of that name on that engine."""
        target = self.fleet.target(name)
        client_kw = {"environment": target.environment} if target.environment else None
        ctr = DockerContainer(image, command=command, env=env or {}, docker_client_kw=client_kw)
        for inside, (host, mode) in (mounts or {}).items():
            if target.local or not host.startswith("/"):  # a named volume is made on the node's engine
                ctr.with_volume_mapping(host, inside, mode)
            elif Path(host).is_file():
                ctr.with_copy_into_container(Path(host), inside, 0o444 if mode == "ro" else 0o644)
            else:
                raise TopologyError(
                    f"{name} runs on engine {target.name}, and needs the folder {host} of this machine at "
                    f"{inside} (faultfs, clock faults): those need the node on this machine's engine "
                    "(topology.hosts: place it on local, or drop the fault; docs/scale.md)"
                )
        ctr.with_name(f"sc-{self.run_id}-{name}")
        ctr.with_network(network).with_network_aliases(*(aliases or [name]))  # type: ignore[arg-type]
        for port in published:
            # A fixed host port, chosen now: Docker would pick a new one after a
            # kill and start, and every URL the harness holds would go stale.
            host = free_port()
            self._host_ports[(name, port)] = host
            ctr.ports[f"{port}/tcp"] = (target.publish_ip, host)  # type: ignore[assignment]
        ctr.with_kwargs(labels={**self.labels, engine.NODE_LABEL: name}, **docker_kwargs)
        self.containers[name] = ctr
        return ctr

    def start(self, *names: str) -> None:
        """Start containers in parallel (bring-up time is dominated by engine round-trips)."""
        names = names or tuple(self.containers)
        if names:
            self._require_reaper()
        self._send_images(names)
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            futures = {n: pool.submit(self.containers[n].start) for n in names}
        errors = {n: f.exception() for n, f in futures.items() if f.exception()}
        if errors:
            raise TopologyError("could not start " + "; ".join(f"{n}: {e}" for n, e in errors.items()))

    def attach(self, name: str, network: str, aliases: list[str]) -> None:
        """Join the running container `name` to the run's `network` as well (Toxiproxy to each node's)."""
        target = self.fleet.target(name)
        net = target.client.networks.get(self.networks[network].name)
        net.connect(self.raw(name).id, aliases=aliases)

    def _send_images(self, names: tuple[str, ...]) -> None:
        """Each container's image onto its engine, where that is not this machine's: one thread per engine,
        each image sent once."""
        wanted: dict[str, set[str]] = {}
        for n in names:
            target = self.fleet.target(n)
            if target.environment:
                wanted.setdefault(target.name, set()).add(self.containers[n].image)
        if not wanted:
            return
        with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
            done = [
                pool.submit(lambda t, refs: [self.fleet.ensure_image(t, r) for r in sorted(refs)], t, refs)
                for t, refs in ((self.fleet.targets[k], v) for k, v in wanted.items())
            ]
        for f in done:
            f.result()

    def address(self, name: str) -> str:
        """Where this machine reaches the container's published ports: 127.0.0.1 on this machine's engine."""
        return self.fleet.target(name).reach_ip

    def endpoint(self, name: str, port: int) -> str:
        """`address:port` of the container's published `port`."""
        return f"{self.address(name)}:{self.host_port(name, port)}"

    def host_port(self, name: str, port: int) -> int:
        """The port where the container's `port` is published (stable across restarts), on address(name)."""
        try:
            return self._host_ports[(name, port)]
        except KeyError:
            raise TopologyError(f"{name} does not publish port {port}") from None

    def raw(self, name: str) -> Any:
        """The docker SDK container, for kill/pause/restart."""
        ctr = self.containers[name].get_wrapped_container()
        ctr.reload()
        return ctr

    def close(self) -> None:
        """Remove everything labelled with this run: the containers and networks made
        here, and anything else that carries the label."""
        self.containers.clear()
        self.networks.clear()
        problems = self.fleet.close()
        for res in engine.list_runs(self.run_id).values():
            problems += engine.remove_run(res)
        if problems:
            log.warning("run %s left: %s", self.run_id, "; ".join(problems))
        if self.reaper is not None:
            self.reaper.close()  # what is left, it removes after its grace period
            self.reaper = None

    def _require_reaper(self) -> None:
        """Nothing is made that a killed harness would leave behind."""
        if self.reaper is None:
            raise TopologyError(
                f"run {self.run_id} has no reaper: use `with DockerRun(...)`, and not after close"
            )
