"""The analytics node of a topology (`topology.analytics`; docs/contract.md, "Analytics"): netsync's
`analytics` role following the store's changefeed through its own proxy to SurrealDB, hearing the scout's
summaries through its proxies to NATS, its cursor and applied log on a Docker volume of its own (labelled
with the run, so removed with it). Defined here, started with the rest by System.up."""

from __future__ import annotations

from harness.shape import ANALYTICS
from harness.topology.docker import DockerRun
from harness.topology.plan import Link, SystemConfig, links_from

ANALYTICS_DIR = "/var/lib/netsync-analytics"  # NETSYNC_ANALYTICS_DIR: the cursor and the applied log
CHANGEFEED_ENV = "NETSYNC_CHANGEFEED_RETENTION"  # given to the projector and analytics alike


def changefeed_env(cfg: SystemConfig) -> dict[str, str]:
    """The retention both roles define the projected table with (whichever connects first defines it)."""
    return {CHANGEFEED_ENV: cfg.changefeed_retention}


def analytics_env(cfg: SystemConfig, links: dict[str, Link]) -> dict[str, str]:
    """The analytics role's environment (docs/contract.md's table), every data-plane address a proxy."""
    nats = ",".join(f"nats://toxiproxy:{ln.port}" for ln in links_from(links, ANALYTICS, cfg.nats_names()))
    return {
        "NETSYNC_SURREAL_URL": f"ws://toxiproxy:{links[f'{ANALYTICS}>surrealdb'].port}/rpc",
        "NETSYNC_NATS_URL": nats,
        "NETSYNC_ANALYTICS_DIR": ANALYTICS_DIR,
        **changefeed_env(cfg),
    }


def analytics_volume(run: DockerRun) -> dict[str, tuple[str, str]]:
    """A Docker volume of the run's for the node's state: it outlives a kill and a restart of the
    container (as the contract's "its own volume" asks) and goes with the run's other resources."""
    name = f"sc-{run.run_id}-{ANALYTICS}"
    run.fleet.target(ANALYTICS).client.volumes.create(name=name, labels=dict(run.labels))  # on its engine
    return {ANALYTICS_DIR: (name, "rw")}
