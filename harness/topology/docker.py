"""The Docker backend of a topology: one run's containers and networks.

Everything it makes carries the run's labels, is watched by the reaper (Ryuk, or our
offline image that speaks its protocol) so a killed harness leaves nothing behind,
and is removed by the same object that made it when the `with` block ends.
"""

from __future__ import annotations

import logging
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness import engine
from harness.errors import TopologyError
from harness.images import Images

log = logging.getLogger(__name__)


def configure_reaper(images: Images) -> str:
    """Point Testcontainers at our reaper image (never disable the reaper)."""
    ref = images.ensure(("reaper",))["reaper"]
    testcontainers_config.ryuk_image = ref
    testcontainers_config.ryuk_disabled = False
    return ref


_GIVEN: set[int] = set()  # every port free_port() handed out in this process
_LOWEST = 20000  # below this sit the ports people run their own services on
_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Docker picks its own
    dynamic ports from it too); (32768, 60999) where the file cannot be read."""
    try:
        with open(_RANGE_FILE) as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 now, outside the kernel's ephemeral range, and never one this
    process handed out before.

    Outside the ephemeral range, because between this check and Docker binding the port any
    outgoing connection on the machine may be given it as its local port: a fresh-clone CI run
    lost a bring-up to "listen tcp4 127.0.0.1:32771: bind: address already in use", 32771 being
    the third port of that range. Never twice, because two containers published on one port fail
    to start ("port is already allocated"). Another process that binds fixed ports may still take
    it first; then Docker fails to bind it and start() says so."""
    low, _ = _ephemeral_range()
    if low - _LOWEST >= 1000:
        candidates = range(_LOWEST, low)
        start = random.randrange(len(candidates))
        for i in range(len(candidates)):
            port = candidates[(start + i) % len(candidates)]
            if port not in _GIVEN and _bindable(port):
                _GIVEN.add(port)
                return port
    while True:  # no room below the ephemeral range: let the kernel choose
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


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


class DockerRun:
    """`with DockerRun(images) as run:` then `run.network(...)`, `run.container(...)`."""

    def __init__(self, images: Images, run_id: str | None = None) -> None:
        self.images = images
        self.run_id = run_id or engine.new_run_id()
        self.labels = engine.run_labels(self.run_id)
        self.networks: dict[str, Network] = {}
        self.containers: dict[str, DockerContainer] = {}
        self._host_ports: dict[tuple[str, int], int] = {}

    def __enter__(self) -> DockerRun:
        engine.client()  # fail early, with the fix, when no engine answers
        configure_reaper(self.images)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def network(self, name: str, internal: bool = False) -> Network:
        """A labelled bridge network; `internal` ones have no route off the host."""
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
        network: Network,
        aliases: list[str] | None = None,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        published: tuple[int, ...] = (),
        mounts: dict[str, tuple[str, str]] | None = None,
        **docker_kwargs: Any,
    ) -> DockerContainer:
        """Define (not start) a container; `published` ports are bound on 127.0.0.1 only; `mounts` bind
        host paths: container path -> (host path, "rw" or "ro")."""
        ctr = DockerContainer(image, command=command, env=env or {})
        for inside, (host, mode) in (mounts or {}).items():
            ctr.with_volume_mapping(host, inside, mode)
        ctr.with_name(f"sc-{self.run_id}-{name}")
        ctr.with_network(network).with_network_aliases(*(aliases or [name]))
        for port in published:
            # A fixed host port, chosen now: Docker would pick a new one after a
            # kill and start, and every URL the harness holds would go stale.
            host = free_port()
            self._host_ports[(name, port)] = host
            ctr.ports[f"{port}/tcp"] = ("127.0.0.1", host)  # type: ignore[assignment]
        ctr.with_kwargs(labels={**self.labels, engine.NODE_LABEL: name}, **docker_kwargs)
        self.containers[name] = ctr
        return ctr

    def start(self, *names: str) -> None:
        """Start containers in parallel (bring-up time is dominated by engine round-trips)."""
        names = names or tuple(self.containers)
        # The reaper must be up before the first container, or a crash now leaks.
        if names:
            from testcontainers.core.container import Reaper

            Reaper.get_instance()
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            futures = {n: pool.submit(self.containers[n].start) for n in names}
        errors = {n: f.exception() for n, f in futures.items() if f.exception()}
        if errors:
            raise TopologyError("could not start " + "; ".join(f"{n}: {e}" for n, e in errors.items()))

    def host_port(self, name: str, port: int) -> int:
        """The 127.0.0.1 port where the container's `port` is published (stable across restarts)."""
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
        problems: list[str] = []
        for res in engine.list_runs(self.run_id).values():
            problems += engine.remove_run(res)
        if problems:
            log.warning("run %s left: %s", self.run_id, "; ".join(problems))
