"""The infrastructure services of a topology (NATS, SurrealDB, Toxiproxy): how each is
started and how the harness knows it answers. Commands suit both the offline images
and the official ones (same entrypoints)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from surrealdb import AsyncSurreal
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness import shape
from harness.topology.disks import RunDisks
from harness.topology.docker import DockerRun
from harness.waiting import wait_until

NATS_CLIENT_PORT = 4222
NATS_MONITOR_PORT = 8222
NATS_ROUTE_PORT = 6222  # a cluster's routes between NATS nodes
NATS_CLUSTER = "solar-chaos"
SURREAL_PORT = 8000
TOXIPROXY_API_PORT = 8474
SURREAL_USER = "root"
SURREAL_PASS = "root"


@asynccontextmanager
async def surreal_session(
    url: str, ns: str = shape.SURREAL_NS, db_name: str = shape.SURREAL_DB
) -> AsyncIterator[AsyncSurreal]:
    """A signed-in session on the run's database (the harness's way into the store: collection, reset),
    closed on leaving."""
    db = AsyncSurreal(url)
    await db.connect()
    try:
        await db.signin({"username": SURREAL_USER, "password": SURREAL_PASS})
        await db.use(ns, db_name)
        yield db
    finally:
        await db.close()


@dataclass(frozen=True)
class Service:
    role: str  # the image role in docker/images.toml
    command: tuple[str, ...]
    ports: tuple[int, ...]  # published (on 127.0.0.1 here) for the observation plane
    health_port: int
    health_path: str

    data_dir: str = "/data"  # where it keeps its data (a faultfs volume is bind-mounted there)

    def define(
        self,
        run: DockerRun,
        network: Network,
        name: str | None = None,
        extra_ports: tuple[int, ...] = (),
        *,
        args: tuple[str, ...] = (),
        mounts: dict[str, tuple[str, str]] | None = None,
        env: dict[str, str] | None = None,
    ) -> DockerContainer:
        """`args` go before the service's own; `mounts`: container path -> (host path, "rw" or "ro")."""
        return run.container(
            name or self.role,
            run.images.ref(self.role),
            network=network,
            command=[*args, *self.command],
            env=env,
            published=self.ports + extra_ports,
            mounts=mounts,
            user="0",
        )

    def health_url(self, run: DockerRun, name: str | None = None) -> str:
        return f"http://{run.endpoint(name or self.role, self.health_port)}{self.health_path}"

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

NATS_CONFIG = "/etc/nats/solar-chaos.conf"  # where the run's config file is bind-mounted (read-only)


def nats_config(
    sync_interval: str | None, server_name: str | None = None, routes: list[str] | None = None
) -> str:
    """nats-server's config file for what no flag sets: JetStream's sync_interval, and in a cluster the
    node's name and its routes (each a Toxiproxy proxy, `nats-route://toxiproxy:PORT`); the flags add the
    rest. `no_advertise`: clients learn no server's own address, so they reach the cluster only through the
    proxies they were given."""
    lines = ["# written by solar-chaos for one run"]
    if server_name is not None:
        lines.append(f"server_name: {server_name}")
    if sync_interval is not None:
        lines += ["jetstream {", f"  sync_interval: {sync_interval}", "}"]
    if routes is not None:
        lines += [
            "cluster {",
            f"  name: {NATS_CLUSTER}",
            f"  listen: 0.0.0.0:{NATS_ROUTE_PORT}",
            "  no_advertise: true",
            "  routes: [",
            *(f"    {route}" for route in routes),
            "  ]",
            "}",
        ]
    return "\n".join(lines) + "\n"


def define_stores(
    run: DockerRun,
    nets: dict[str, Network],
    disks: RunDisks,
    faultfs: tuple[str, ...],
    sync_interval: str | None,
    routes: dict[str, list[str]] | None = None,
    surreal_clock: tuple[dict[str, tuple[str, str]], dict[str, str]] | None = None,
) -> None:
    """NATS and SurrealDB, each with its data on faultfs when it is in `faultfs`. A single NATS node (no
    `routes`) gets a config file only when `sync_interval` is set; each node of a cluster (`routes`: node
    -> its route URLs) gets its own. No flag sets these, and the official image has no shell: a file on the
    host, bound read-only. `surreal_clock`: SurrealDB's extra mounts and environment for libfaketime (its
    binary is dynamically linked; docs/clock.md)."""
    for node, node_routes in (routes or {"nats": None}).items():
        args: tuple[str, ...] = ()
        mounts = disks.data_mount(node, NATS.data_dir, faultfs)
        if sync_interval is not None or node_routes is not None:
            name = None if node_routes is None else node
            text = nats_config(sync_interval, name, node_routes)
            mounts[NATS_CONFIG] = (disks.file(f"{node}.conf", text), "ro")
            args = ("-c", NATS_CONFIG)
        NATS.define(run, nets[node], node, args=args, mounts=mounts)
    surreal_mounts = disks.data_mount("surrealdb", SURREALDB.data_dir, faultfs)
    clock_mounts, clock_env = surreal_clock or ({}, {})
    SURREALDB.define(run, nets["surrealdb"], mounts={**surreal_mounts, **clock_mounts}, env=clock_env)


TOXIPROXY = Service(
    role="toxiproxy",
    command=("-host=0.0.0.0",),
    ports=(TOXIPROXY_API_PORT,),
    health_port=TOXIPROXY_API_PORT,
    health_path="/version",
)
