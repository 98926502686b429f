"""The whole system under test in Docker: NATS, SurrealDB, Toxiproxy, the orchestrator,
the projector and N agents, every data-plane link behind its own Toxiproxy proxy.

Each node sits alone on its own Docker network, which it shares only with Toxiproxy:
no route exists between data-plane peers, so a partition cannot leak through an
address a peer learned by itself. The harness observes each node directly through
ports published on 127.0.0.1 (on another host's engine: that host's address), never through a proxy.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nats
import nats.js.errors
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from harness import implementations, shape
from harness.errors import TopologyError
from harness.images import INFRA_ROLES, Images
from harness.topology.disks import RunDisks
from harness.topology.docker import DockerRun
from harness.topology.nats_cluster import wait_cluster_ready
from harness.topology.netsync_nodes import define_netsync
from harness.topology.plan import (
    CLOCK_DIR,
    CLOCK_ENV,
    HTTP_PORT,
    SystemConfig,
    nats_routes,
    plan_links,
)
from harness.topology.services import (
    NATS,
    NATS_CLIENT_PORT,
    NATS_MONITOR_PORT,
    SURREAL_PORT,
    SURREALDB,
    TOXIPROXY,
    TOXIPROXY_API_PORT,
    define_stores,
    surreal_session,
)
from harness.toxiproxy import Toxiproxy
from harness.waiting import Hopeless, await_until, wait_until


class System:
    """`with System(images, SystemConfig(agents=3)) as sut:` brings everything up and
    always tears it down; `sut.agent_url("agent-1")` etc. are the observation plane."""

    def __init__(self, images: Images, config: SystemConfig = SystemConfig(), run_id: str | None = None):
        self.images = images
        self.cfg = config
        self.links = plan_links(config)
        if (why := config.away_from_folders()) is not None:
            raise TopologyError(why)
        self.run = DockerRun(images, run_id, config.placement() if config.hosts else None)
        self.disks = RunDisks(self.run.run_id)
        # node -> image: the implementation chosen for it (harness/implementations.py)
        self.node_images = implementations.node_images(images, config, self.nodes)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def nodes(self) -> list[str]:
        return shape.node_names(self.cfg.agents, self.cfg.nats_nodes, self.cfg.analytics)

    def __enter__(self) -> System:
        self.images.ensure((*INFRA_ROLES, *implementations.image_roles(self.cfg)))  # a no-op when present
        self.run.__enter__()
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The containers first, then the volumes they used (a mount in use would only detach lazily)."""
        try:
            self.run.close()
        finally:
            self.disks.close()

    # -- bring-up -------------------------------------------------------------

    def up(self) -> None:
        """Everything starts at once: the nodes retry their dials until Toxiproxy is
        attached to their networks and populated, so nothing waits on anything else."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            nets = dict(zip(self.nodes, pool.map(self.run.network, self.nodes), strict=True))
            control = self.run.network("control")
        define_stores(
            self.run,
            nets,
            self.disks,
            self.cfg.faultfs,
            self.cfg.nats_sync_interval,
            nats_routes(self.cfg, self.links),
            self._surreal_clock() if self.cfg.surreal_clock else None,
        )
        TOXIPROXY.define(self.run, control)
        define_netsync(self.run, self.cfg, self.links, self.disks, nets, self.node_images, self.clock_faults)
        # A cluster's nodes start once their routes' proxies exist: routes that connect at the first dial
        # elect a meta leader at once, where routes coming up over a second of retries could split the
        # first vote and wait out NATS's election timeout (4 s or more).
        later = self.cfg.nats_names() if self.cfg.nats_nodes > 1 else []
        self.run.start(*(n for n in self.run.containers if n not in later))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda node: self.run.attach("toxiproxy", node, ["toxiproxy"]), nets))
        TOXIPROXY.wait_ready(self.run)
        asyncio.run(self._populate_proxies())
        if later:
            self.run.start(*later)
        for node in self.cfg.nats_names():
            NATS.wait_ready(self.run, node)
        SURREALDB.wait_ready(self.run)
        extra = [shape.ANALYTICS] if self.cfg.analytics else []
        for node in ("orchestrator", "projector", *extra, *self.cfg.agent_names()):
            self.wait_http(node)
        self.wait_field("orchestrator", "nats", True)
        if self.cfg.nats_nodes > 1:
            self.wait_cluster()  # the orchestrator creates the stream once a meta leader is elected
        for agent in self.cfg.agent_names():
            self.wait_connected(agent)

    def health(self, node: str, *fields: str) -> dict:
        """The node's /healthz; Hopeless when it lacks one of `fields` (docs/contract.md lists
        every field the harness reads), so another implementation learns what is missing at
        once instead of waiting out a timeout."""
        h = httpx.get(f"{self.http_url(node)}/healthz", timeout=1.0).json()
        missing = [f for f in fields if not isinstance(h, dict) or f not in h]
        if missing:
            raise Hopeless(
                f"{node}'s /healthz answered {h!r}, without {', '.join(missing)}: docs/contract.md "
                f"requires it (agent: name, peer_id, buffer_depth, buffer_cap, peers_connected, "
                f"orchestrator_connected; orchestrator: name, peer_id, nats)"
            )
        return h

    def wait_field(self, node: str, field: str, value: object, timeout: float = 30.0) -> None:
        """Until the node's /healthz shows `field` equal to `value`."""

        def probe() -> bool:
            return self.health(node, field)[field] == value

        wait_until(probe, f"{node}'s /healthz to show {field}={value!r}", timeout=timeout)

    def wait_connected(self, agent: str, timeout: float = 30.0) -> None:
        """Until the agent holds libp2p connections to every peer and the orchestrator."""
        want = len(self.cfg.agent_names()) - 1

        def probe() -> dict | None:
            h = self.health(agent, "peers_connected", "orchestrator_connected")
            ok = len(h["peers_connected"]) == want and h["orchestrator_connected"] is True
            return h if ok else None

        wait_until(probe, f"{agent} to connect to its {want} peers and the orchestrator", timeout=timeout)

    @property
    def clock_faults(self) -> bool:
        """Whether the agents run under libfaketime (docs/clock.md): asked for (`SystemConfig.clock`), and
        only images built here (netsync's, net-sync-ts's), which have it; not an image of another origin."""
        return self.cfg.clock and self.cfg.sut_image is None

    def _surreal_clock(self) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        """SurrealDB under libfaketime (docs/clock.md): its image has no libfaketime, so netsync's (the
        Debian build the images copy) is bound read-only where CLOCK_ENV preloads it, with the offset folder
        beside it; the binary is dynamically linked against glibc, which the library wraps."""
        clock = Path(self.disks.file("surrealdb.clock/offset", "+0\n")).parent
        library = str(self.images.faketime())
        return {CLOCK_ENV["LD_PRELOAD"]: (library, "ro"), CLOCK_DIR: (str(clock), "ro")}, dict(CLOCK_ENV)

    def set_clock(self, agent: str, offset: int) -> None:
        """The agent's wall clock `offset` seconds off the host's from its next reading: its offset file
        (bind-mounted from the host) replaced whole, so that a reading never sees half a line."""
        path = Path(self.disks.file(f"{agent}.clock/offset.new", f"{offset:+d}\n"))
        os.replace(path, path.with_name("offset"))

    def wait_cluster(self, timeout: float = 60.0) -> None:
        """Until the stream's leader reports a meta leader and the stream's replicas all current."""
        wait_cluster_ready(self.nats_monitor_urls, self.cfg.stream_replicas, timeout)

    async def _populate_proxies(self) -> None:
        async with Toxiproxy(self.toxiproxy_url) as tp:
            await tp.populate([(ln.name, f"0.0.0.0:{ln.port}", ln.upstream) for ln in self.links.values()])

    def wait_http(self, node: str, timeout: float = 30.0) -> None:
        def probe() -> bool:
            return httpx.get(f"{self.http_url(node)}/healthz", timeout=1.0).status_code == 200

        try:
            wait_until(probe, f"{node} to answer /healthz", timeout=timeout)
        except Exception as e:
            logs = self.run.raw(node).logs(tail=30).decode(errors="replace")
            raise TopologyError(f"{node} did not come up: {e}\nlast log lines:\n{logs}") from e

    # -- reset between scenarios ----------------------------------------------------

    def resettable(self) -> bool:
        """Whether reset() can make this system as new: every node answers and no agent
        holds buffered intents (those would be replayed into the next scenario); in a NATS cluster,
        every NATS node answers too (a stream recreated on a partial cluster would start under-replicated).
        Never with an analytics node: its view, cursor and applied log would carry the last scenario's
        changes into the next, so each such scenario brings its system up anew."""
        if self.cfg.analytics:
            return False
        try:
            for node in self.cfg.nats_names():  # answering; reset waits for the replicas to be current
                if httpx.get(NATS.health_url(self.run, node), timeout=1.0).status_code != 200:
                    return False
            for node in (*self.cfg.agent_names(), "orchestrator", "projector"):
                h = httpx.get(f"{self.http_url(node)}/healthz", timeout=1.0).json()
                if h.get("buffer_depth", 0):
                    return False
        except (httpx.HTTPError, ValueError):
            return False
        return True

    def reset(self) -> float:
        """Make a running system as new without restarting a container: every proxy
        enabled and free of toxics, the stream recreated empty, the store cleared, the
        agents' buffers empty and their peers connected. Returns the seconds it took."""
        t0 = time.monotonic()
        if self.clock_faults:  # whatever a fault left there
            for agent in self.cfg.agent_names():
                self.set_clock(agent, 0)
        if self.cfg.surreal_clock:
            self.set_clock("surrealdb", 0)
        asyncio.run(self._reset())
        if self.cfg.nats_nodes > 1:
            self.wait_cluster()
        for agent in self.cfg.agent_names():
            self.wait_connected(agent)
        return time.monotonic() - t0

    async def _reset(self) -> None:
        async with Toxiproxy(self.toxiproxy_url) as tp:
            await tp.reset()
        async with httpx.AsyncClient(timeout=2.0) as http:
            for agent in self.cfg.agent_names():
                depth = (await http.get(f"{self.http_url(agent)}/healthz")).json().get("buffer_depth", 0)
                if depth:
                    raise TopologyError(f"{agent} still buffers {depth} intents: cannot reset, bring up anew")
        # A cluster's JetStream API may time out while it elects a leader (after a node's restart, say):
        # tried again until the deadline, and the error says what was last seen.
        await await_until(self._recreate_stream, f"stream {shape.STREAM} recreated", timeout=30, interval=0.5)
        async with surreal_session(self.surreal_url) as db:
            await db.query(f"REMOVE TABLE IF EXISTS {shape.STORE_TABLE}")
            if self.cfg.analytics:
                # Defined again with its changefeed: the projector's next write would otherwise make the
                # table without one, and analytics could follow none of its rows (pytest resets even a
                # system it has just brought up).
                retention = self.cfg.changefeed_retention
                await db.query(f"DEFINE TABLE {shape.STORE_TABLE} CHANGEFEED {retention}")

    async def _recreate_stream(self) -> bool:
        nc = await nats.connect(self.nats_servers, connect_timeout=2)
        try:
            js = nc.jetstream(timeout=5)
            try:
                await js.delete_stream(shape.STREAM)
            except nats.js.errors.NotFoundError:
                pass
            # The orchestrator would create it the same way (docs/contract.md); creating it
            # here means the first intent after a reset finds it, and so does the projector.
            await js.add_stream(self.stream_config())
            return True
        finally:
            await nc.close()

    def stream_config(self) -> StreamConfig:
        c = self.cfg
        return StreamConfig(
            name=shape.STREAM,
            subjects=[shape.STREAM_SUBJECTS],
            storage=StorageType.FILE,
            max_msgs=c.stream_max_msgs,
            max_bytes=c.stream_max_bytes,
            max_age=c.stream_max_age_s,
            duplicate_window=c.duplicate_window_s,
            discard=DiscardPolicy.OLD,
            num_replicas=c.stream_replicas,
        )

    # -- the observation plane (direct, never proxied) ----------------------------

    def http_url(self, node: str) -> str:
        return f"http://{self.run.endpoint(node, HTTP_PORT)}"

    @property
    def toxiproxy_url(self) -> str:
        return f"http://{self.run.endpoint('toxiproxy', TOXIPROXY_API_PORT)}"

    @property
    def nats_servers(self) -> list[str]:
        """Every NATS node's client port, directly: a client given them all fails over between them."""
        return [f"nats://{self.run.endpoint(n, NATS_CLIENT_PORT)}" for n in self.cfg.nats_names()]

    @property
    def nats_url(self) -> str:
        """The first NATS node's client port (the only one of a single server)."""
        return self.nats_servers[0]

    @property
    def nats_monitor_urls(self) -> dict[str, str]:
        """Each NATS node's monitoring endpoint, by node name."""
        return {n: f"http://{self.run.endpoint(n, NATS_MONITOR_PORT)}" for n in self.cfg.nats_names()}

    @property
    def surreal_url(self) -> str:
        return f"ws://{self.run.endpoint('surrealdb', SURREAL_PORT)}/rpc"


class SharedSystem:
    """One running System, reset and reused from scenario to scenario while the configuration they
    want stays the same; brought up anew (the old one torn down) when it changes or cannot be reset."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self._sut: System | None = None

    def get(self, want: SystemConfig) -> System:
        if self._sut is not None and self._sut.cfg == want and self._sut.resettable():
            return self._sut
        self.close()
        self._sut = System(self.images, want).__enter__()
        return self._sut

    def close(self) -> None:
        sut, self._sut = self._sut, None
        if sut is not None:
            sut.__exit__(None, None, None)
