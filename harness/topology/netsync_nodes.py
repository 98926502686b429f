"""netsync's containers in a topology (the system under test: the orchestrator, the projector and the
agents): each one's environment as docs/contract.md defines it, its proxies to the others, its journal and
clock mounts. Defined, not started: System.up starts them with the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testcontainers.core.network import Network

from harness.topology.analytics_node import analytics_env, analytics_volume, changefeed_env
from harness.topology.disks import RunDisks
from harness.topology.docker import DockerRun
from harness.topology.identity import peer_id_for_seed
from harness.topology.plan import (
    CLOCK_DIR,
    CLOCK_ENV,
    HTTP_PORT,
    JOURNAL_DIR,
    P2P_PORT,
    Link,
    SystemConfig,
    links_from,
)


def define_netsync(
    run: DockerRun,
    cfg: SystemConfig,
    links: dict[str, Link],
    disks: RunDisks,
    nets: dict[str, Network],
    images: dict[str, str],
    clock_faults: bool,
) -> None:
    """Define every node of the system under test of `cfg` on its own network of `nets`, each running its
    image of `images` (node -> image: its implementation's, harness/implementations.py); `clock_faults`:
    the agents run under libfaketime, each with its offset file mounted (docs/clock.md)."""
    _Nodes(run, cfg, links, disks, images, clock_faults).define(nets)


@dataclass
class _Nodes:
    run: DockerRun
    cfg: SystemConfig
    links: dict[str, Link]
    disks: RunDisks
    images: dict[str, str]  # node -> image
    clock_faults: bool

    def define(self, nets: dict) -> None:
        agents = self.cfg.agent_names()
        orch_id = peer_id_for_seed("orchestrator")
        stream_env = {
            "NETSYNC_DUPLICATE_WINDOW_S": str(self.cfg.duplicate_window_s),
            "NETSYNC_STREAM_MAX_MSGS": str(self.cfg.stream_max_msgs),
            "NETSYNC_STREAM_MAX_BYTES": str(self.cfg.stream_max_bytes),
            "NETSYNC_STREAM_MAX_AGE_S": str(self.cfg.stream_max_age_s),
        }
        self._node(
            "orchestrator",
            nets,
            {
                "NETSYNC_NATS_URL": self._nats_clients_url("orchestrator"),
                "NETSYNC_STREAM_REPLICAS": str(self.cfg.stream_replicas),
                "NETSYNC_TELEMETRY_INTERVAL_MS": str(self.cfg.telemetry_interval_ms),
                **stream_env,
            },
        )
        self._node(
            "projector",
            nets,
            {
                "NETSYNC_NATS_URL": self._nats_clients_url("projector"),
                "NETSYNC_SURREAL_URL": f"ws://toxiproxy:{self.links['projector>surrealdb'].port}/rpc",
                **changefeed_env(self.cfg),
            },
        )
        if self.cfg.analytics:
            self._node("analytics", nets, analytics_env(self.cfg, self.links), analytics_volume(self.run))
        for a in agents:
            peers = ",".join(
                f"{b}=/dns4/toxiproxy/tcp/{self.links[f'{a}>{b}'].port}/p2p/{peer_id_for_seed(b)}"
                for b in agents
                if b != a
            )
            env = {
                "NETSYNC_PEERS": peers,
                "NETSYNC_ORCHESTRATOR": (
                    f"/dns4/toxiproxy/tcp/{self.links[f'{a}>orchestrator'].port}/p2p/{orch_id}"
                ),
                "NETSYNC_BUFFER_CAP": str(self.cfg.buffer_cap),
                "NETSYNC_INTENT_TIMEOUT_MS": str(self.cfg.intent_timeout_ms),
                "NETSYNC_COMMIT_TIMEOUT_MS": str(self.cfg.commit_timeout_ms),
                "NETSYNC_REPLAY_INTERVAL_MS": str(self.cfg.replay_interval_ms),
                "NETSYNC_TELEMETRY_INTERVAL_MS": str(self.cfg.telemetry_interval_ms),
                "NETSYNC_JOURNAL_DIR": JOURNAL_DIR,
            }
            if self.cfg.quorum:
                env["NETSYNC_QUORUM"] = str(self.cfg.quorum)
            mounts = self.disks.data_mount(a, JOURNAL_DIR, self.cfg.faultfs)
            if self.clock_faults:
                env.update(CLOCK_ENV)
                clock = Path(self.disks.file(f"{a}.clock/offset", "+0\n")).parent
                mounts[CLOCK_DIR] = (str(clock), "ro")
            self._node(a, nets, env, mounts)

    def _node(
        self, name: str, nets: dict, env: dict[str, str], mounts: dict[str, tuple[str, str]] | None = None
    ) -> None:
        role = name.split("-")[0] if name.startswith("agent-") else name
        base = {
            "NETSYNC_NAME": name,
            "NETSYNC_IDENTITY_SEED": name,
            "NETSYNC_LISTEN": f"/ip4/0.0.0.0/tcp/{P2P_PORT}",
            "NETSYNC_HTTP_PORT": str(HTTP_PORT),
        }
        if self.cfg.buggify:
            base["NETSYNC_BUGGIFY"] = ",".join(self.cfg.buggify)
        self.run.container(
            name,
            self.images[name],
            network=nets[name],
            command=[role],
            env={**base, **env},
            published=(HTTP_PORT,),
            mounts=mounts,
        )

    def _nats_clients_url(self, client: str) -> str:
        """NETSYNC_NATS_URL of the orchestrator or projector: its proxies to every NATS node."""
        links = links_from(self.links, client, self.cfg.nats_names())
        return ",".join(f"nats://toxiproxy:{ln.port}" for ln in links)
