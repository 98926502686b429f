"""A run's reaper: a container outside the run that removes what the run made once the harness that made it
is gone (killed, or its machine lost), so nothing outlives a run for long."""

from __future__ import annotations

import os
import socket

from testcontainers.core.config import testcontainers_config

import docker
from harness import engine
from harness.errors import TopologyError
from harness.images import Images
from harness.topology.ports import free_port
from harness.waiting import Hopeless, WaitTimeout, wait_until

REAPER_ROLE = "reaper"  # its image's role (docker/images.toml)


def configure_reaper(images: Images) -> str:
    """The reaper image, ready. Testcontainers' own reaper is turned off: it publishes its port on every
    interface and registers a session, not a run; each DockerRun starts a RunReaper instead."""
    ref = images.ensure((REAPER_ROLE,))[REAPER_ROLE]
    testcontainers_config.ryuk_image = ref
    testcontainers_config.ryuk_disabled = True
    return ref


REAPER_LABEL = "solar-chaos.reaper"  # the run a reaper serves; not RUN_LABEL, or the run's removal takes it
REAPER_PORT = 8080  # inside its container


class RunReaper:
    """One run's reaper on one engine: a container outside the run that removes the run's containers,
    networks and volumes on that engine once the harness's connection to it has been gone for
    RYUK_RECONNECTION_TIMEOUT (a SIGKILLed harness leaves nothing). It is told the run id (SOLAR_CHAOS_RUN)
    and refuses any filter but that run's label; the harness registers `label=solar-chaos.run=<id>`.
    On this machine's engine its port is published on 127.0.0.1 only, like every port of the harness; on
    another host's engine (`client`, `publish_ip` and `reach_ip` as harness/topology/fleet.py's Target has
    them) on the address the run's ports use there, at a port that engine picks."""

    def __init__(
        self,
        run_id: str,
        image: str,
        client: docker.DockerClient | None = None,
        publish_ip: str = "127.0.0.1",
        reach_ip: str = "127.0.0.1",
    ) -> None:
        self.run_id = run_id
        self.image = image
        self.client = client
        self.publish_ip, self.reach_ip = publish_ip, reach_ip
        self.port = 0
        self.name = f"solar-chaos-reaper-{run_id}"
        self._sock: socket.socket | None = None

    def start(self, timeout: float = 30.0) -> RunReaper:
        c = self.client or engine.client()
        # This machine's: a port known free here. Another host's: its engine picks one (None), read back.
        self.port = free_port() if self.client is None else 0
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
                ports={f"{REAPER_PORT}/tcp": (self.publish_ip, self.port or None)},
                volumes={
                    testcontainers_config.ryuk_docker_socket: {"bind": "/var/run/docker.sock", "mode": "rw"}
                },
                privileged=testcontainers_config.ryuk_privileged,
            )
        except Exception as e:
            raise TopologyError(f"could not start run {self.run_id}'s reaper ({self.image}): {e}") from e
        if not self.port:
            self.port = _published(ctr, f"{REAPER_PORT}/tcp")

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
        s = socket.create_connection((self.reach_ip, self.port), timeout=5)
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


def _published(ctr: docker.models.containers.Container, port: str) -> int:
    """The host port the engine picked for the container's `port` ("8080/tcp")."""
    try:
        ctr.reload()
        return int(ctr.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])
    except (docker.errors.DockerException, KeyError, IndexError, TypeError, ValueError) as e:
        try:
            ctr.remove(force=True)
        except docker.errors.DockerException:
            pass
        raise TopologyError(f"the reaper's port {port} was published nowhere ({e})") from None
