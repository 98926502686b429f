"""The Docker backend of a topology: one run's containers and networks.

Everything it makes carries the run's labels, is watched by the run's reaper (our image that
speaks Ryuk's protocol, or Ryuk) so a killed harness leaves nothing behind, and is removed by
the same object that made it when the `with` block ends.
"""

from __future__ import annotations

import logging
import os
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
from harness.waiting import Hopeless, WaitTimeout, wait_until

log = logging.getLogger(__name__)


def configure_reaper(images: Images) -> str:
    """The reaper image, ready. Testcontainers' own reaper is turned off: it publishes its port on every
    interface and registers a session, not a run; each DockerRun starts a RunReaper instead."""
    ref = images.ensure(("reaper",))["reaper"]
    testcontainers_config.ryuk_image = ref
    testcontainers_config.ryuk_disabled = True
    return ref


REAPER_LABEL = "solar-chaos.reaper"  # the run a reaper serves; not RUN_LABEL, or the run's removal takes it
REAPER_PORT = 8080  # inside its container


class RunReaper:
    """One run's reaper: a container outside the run that removes the run once the harness's connection
    to it has been gone for RYUK_RECONNECTION_TIMEOUT (a SIGKILLed harness leaves nothing). It is told
    the run id (SOLAR_CHAOS_RUN) and refuses any filter but that run's label; its port is published on
    127.0.0.1 only, like every port of the harness; the harness registers `label=solar-chaos.run=<id>`."""

    def __init__(self, run_id: str, image: str) -> None:
        self.run_id = run_id
        self.image = image
        self.port = 0
        self.name = f"solar-chaos-reaper-{run_id}"
        self._sock: socket.socket | None = None

    def start(self, timeout: float = 30.0) -> RunReaper:
        c = engine.client()
        self.port = free_port()
        env = {
            "SOLAR_CHAOS_RUN": self.run_id,
            "RYUK_PORT": str(REAPER_PORT),
            "RYUK_RECONNECTION_TIMEOUT": testcontainers_config.ryuk_reconnection_timeout,
            "RYUK_CONNECTION_TIMEOUT": os.environ.get("RYUK_CONNECTION_TIMEOUT", "60s"),
        }
        try:
            ctr = c.containers.run(
                self.image,
                detach=True,
                auto_remove=True,
                name=self.name,
                labels={REAPER_LABEL: self.run_id},
                environment=env,
                ports={f"{REAPER_PORT}/tcp": ("127.0.0.1", self.port)},
                volumes={
                    testcontainers_config.ryuk_docker_socket: {"bind": "/var/run/docker.sock", "mode": "rw"}
                },
                privileged=testcontainers_config.ryuk_privileged,
            )
        except Exception as e:
            raise TopologyError(f"could not start run {self.run_id}'s reaper ({self.image}): {e}") from e

        def registered() -> socket.socket:
            try:
                return self._register()
            except OSError:
                # Until the reaper listens, the engine's port forward takes the connection and drops it.
                try:
                    ctr.reload()
                except Exception as e:  # auto_remove: an exited reaper is gone at once
                    raise Hopeless(f"the reaper exited before it answered ({e})") from None
                if ctr.status == "exited":
                    logs = ctr.logs().decode(errors="replace").strip()[-500:]
                    raise Hopeless(f"the reaper exited before it answered: {logs}") from None
                raise

        try:
            # Readiness is the ACK itself: Ryuk and our reaper log differently, both ACK a filter.
            self._sock = wait_until(registered, f"run {self.run_id}'s reaper to ACK its filter", timeout, 0.1)
        except (WaitTimeout, Hopeless) as e:
            try:
                ctr.remove(force=True)
            except Exception:
                pass
            raise TopologyError(str(e)) from None
        return self

    def _register(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(f"label={engine.RUN_LABEL}={self.run_id}\n".encode())
            with s.makefile("rb") as answers:  # closing it leaves the socket open
                answer = answers.readline(4096).strip()
        except OSError:
            s.close()
            raise
        if not answer:
            s.close()
            raise ConnectionError("the reaper closed the connection without an answer")
        if answer != b"ACK":
            s.close()
            raise Hopeless(f"the reaper refused the run's filter: {answer.decode(errors='replace')}")
        s.settimeout(None)  # held open, idle, for the run's life
        return s

    def close(self) -> None:
        """Drop the connection: the reaper removes what is left of the run after its grace period."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


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
        self.reaper: RunReaper | None = None

    def __enter__(self) -> DockerRun:
        engine.client()  # fail early, with the fix, when no engine answers
        # Up before the first network, or a crash now leaks it.
        self.reaper = RunReaper(self.run_id, configure_reaper(self.images)).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def network(self, name: str, internal: bool = False) -> Network:
        """A labelled bridge network; `internal` ones have no route off the host."""
        self._require_reaper()
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
        if names:
            self._require_reaper()
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
        if self.reaper is not None:
            self.reaper.close()  # what is left, it removes after its grace period
            self.reaper = None

    def _require_reaper(self) -> None:
        """Nothing is made that a killed harness would leave behind."""
        if self.reaper is None:
            raise TopologyError(
                f"run {self.run_id} has no reaper: use `with DockerRun(...)`, and not after close"
            )
