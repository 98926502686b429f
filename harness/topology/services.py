"""The infrastructure services of a topology (NATS, SurrealDB, Toxiproxy): how each is
started and how the harness knows it answers. Commands suit both the offline images
and the official ones (same entrypoints)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness.topology.docker import DockerRun
from harness.waiting import wait_until

NATS_CLIENT_PORT = 4222
NATS_MONITOR_PORT = 8222
SURREAL_PORT = 8000
TOXIPROXY_API_PORT = 8474
SURREAL_USER = "root"
SURREAL_PASS = "root"


@dataclass(frozen=True)
class Service:
    role: str  # the image role in docker/images.toml
    command: tuple[str, ...]
    ports: tuple[int, ...]  # published on 127.0.0.1 for the observation plane
    health_port: int
    health_path: str

    def define(
        self, run: DockerRun, network: Network, name: str | None = None, extra_ports: tuple[int, ...] = ()
    ) -> DockerContainer:
        return run.container(
            name or self.role,
            run.images.ref(self.role),
            network=network,
            command=list(self.command),
            published=self.ports + extra_ports,
            user="0",
        )

    def health_url(self, run: DockerRun, name: str | None = None) -> str:
        port = run.host_port(name or self.role, self.health_port)
        return f"http://127.0.0.1:{port}{self.health_path}"

    def wait_ready(self, run: DockerRun, name: str | None = None, timeout: float = 30.0) -> None:
        name = name or self.role

        def probe() -> bool:
            r = httpx.get(self.health_url(run, name), timeout=1.0)
            return r.status_code == 200

        wait_until(probe, f"{name} to answer {self.health_path}", timeout=timeout)


NATS = Service(
    role="nats",
    command=("--jetstream", "--store_dir", "/data", "--http_port", str(NATS_MONITOR_PORT)),
    ports=(NATS_CLIENT_PORT, NATS_MONITOR_PORT),
    health_port=NATS_MONITOR_PORT,
    health_path="/healthz?js-enabled-only=true",
)

SURREALDB = Service(
    role="surrealdb",
    # SurrealDB 3 binds 127.0.0.1 unless told; SurrealKV keeps data across restarts.
    command=(
        "start",
        "--user",
        SURREAL_USER,
        "--pass",
        SURREAL_PASS,
        "--bind",
        f"0.0.0.0:{SURREAL_PORT}",
        "surrealkv:///data/db",
    ),
    ports=(SURREAL_PORT,),
    health_port=SURREAL_PORT,
    health_path="/health",
)

TOXIPROXY = Service(
    role="toxiproxy",
    command=("-host=0.0.0.0",),
    ports=(TOXIPROXY_API_PORT,),
    health_port=TOXIPROXY_API_PORT,
    health_path="/version",
)
