"""Bring-up and reset of the whole system, against the floor of plain `docker run`.

  python bench/bringup.py [--runs 3] [--resets 5] [--nats-nodes 1] [--out reports/bench/bringup.json]

Measures, with every image cached:
- system: `System(...)` from nothing to every node answering and every agent connected
  to its peers (10 networks, Toxiproxy populated, 8 containers and the reaper);
- floor: the same 8 containers (same images, same commands) started by parallel
  `docker run -d` on one network, until each answers on a 127.0.0.1 port; no proxies,
  no per-node networks, no libp2p connections (what no harness can beat);
- reset: `System.reset()` between scenarios (proxies, stream, store, connections).
Goals (issue 5): bring-up <= 1.5x the floor and < 10 s; reset < 1 s.

With `--nats-nodes 3` (or 5) the system is a NATS cluster (stream at R3) with every route and client link
behind Toxiproxy, up once the stream's leader reports its replicas current; its floor starts the same
nodes by `docker run` with plain routes between them (`--cluster`, `--routes`), until each answers
(issue 19's goal: <= 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import engine  # noqa: E402
from harness.images import Images  # noqa: E402
from harness.shape import agent_names, nats_names  # noqa: E402
from harness.topology.identity import peer_id_for_seed  # noqa: E402
from harness.topology.plan import HTTP_PORT, SystemConfig  # noqa: E402
from harness.topology.ports import free_port  # noqa: E402
from harness.topology.services import (  # noqa: E402
    NATS,
    NATS_CLUSTER,
    NATS_ROUTE_PORT,
    SURREALDB,
    TOXIPROXY,
)
from harness.topology.system import System  # noqa: E402
from harness.waiting import wait_until  # noqa: E402


def nats_specs(images: Images, nodes: int) -> list[tuple]:
    """The NATS containers of the floor: one server, or a cluster routed directly (no proxies)."""
    if nodes == 1:
        return [
            (
                "nats",
                images.ref("nats"),
                list(NATS.command),
                NATS.health_port,
                free_port(),
                NATS.health_path,
                {},
            )
        ]
    names = nats_names(nodes)
    specs = []
    for name in names:
        routes = ",".join(f"nats://{other}:{NATS_ROUTE_PORT}" for other in names if other != name)
        command = [*NATS.command, "--server_name", name, "--cluster_name", NATS_CLUSTER]
        command += ["--cluster", f"nats://0.0.0.0:{NATS_ROUTE_PORT}", "--routes", routes]
        specs.append((name, images.ref("nats"), command, NATS.health_port, free_port(), NATS.health_path, {}))
    return specs


def floor_once(images: Images, nats_nodes: int = 1) -> float:
    """The system's containers by plain parallel `docker run`, on one network, until all answer."""
    run_id = engine.new_run_id() + "-floor"
    labels = [f"--label={k}={v}" for k, v in engine.run_labels(run_id).items()]
    net = f"sc-{run_id}"
    subprocess.run(["docker", "network", "create", *labels, net], check=True, capture_output=True)
    t0 = time.monotonic()
    specs = nats_specs(images, nats_nodes)
    for svc in (SURREALDB, TOXIPROXY):
        port = free_port()
        specs.append(
            (svc.role, images.ref(svc.role), list(svc.command), svc.health_port, port, svc.health_path, {})
        )
    # The same netsync containers with their real commands, each answering /healthz:
    # only the proxies, the per-node networks and the libp2p connections are left out.
    orch = f"/dns4/orchestrator/tcp/4001/p2p/{peer_id_for_seed('orchestrator')}"
    nats_url = ",".join(f"nats://{spec[0]}:4222" for spec in specs[:nats_nodes])
    common = {"NETSYNC_NATS_URL": nats_url, "NETSYNC_SURREAL_URL": "ws://surrealdb:8000/rpc"}
    for name in ("orchestrator", "projector", *agent_names(3)):
        env = {**common, "NETSYNC_NAME": name, "NETSYNC_ORCHESTRATOR": orch}
        specs.append((name, images.ref("netsync"), [name.split("-")[0]], 8080, free_port(), "/healthz", env))

    def start(spec: tuple) -> None:
        name, image, command, cport, hport, _, extra = spec
        args = ["docker", "run", "-d", *labels, "--network", net, "--name", f"{net}-{name}"]
        args += ["-p", f"127.0.0.1:{hport}:{cport}", "--network-alias", name]
        for k, v in extra.items():
            args += ["-e", f"{k}={v}"]
        args += [image, *command]
        subprocess.run(args, check=True, capture_output=True)

    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        list(pool.map(start, specs))
    for name, _, _, _, hport, path, _ in specs:
        wait_until(
            lambda p=hport, q=path: httpx.get(f"http://127.0.0.1:{p}{q}", timeout=1).status_code < 500,
            f"{name} to answer",
            timeout=60,
        )
    took = time.monotonic() - t0
    for res in engine.list_runs(run_id).values():
        engine.remove_run(res)
    return took


def system_once(images: Images, resets: int, nats_nodes: int = 1) -> tuple[float, list[float]]:
    cfg = SystemConfig(agents=3, nats_nodes=nats_nodes, stream_replicas=1 if nats_nodes == 1 else 3)
    t0 = time.monotonic()
    with System(images, cfg) as sut:
        up = time.monotonic() - t0
        for agent in sut.cfg.agent_names():
            httpx.post(f"{sut.http_url(agent)}/intents", json={"key": "k", "value": 1}, timeout=5)
        reset_times = [sut.reset() for _ in range(resets)]
        assert httpx.get(f"http://127.0.0.1:{sut.run.host_port('agent-1', HTTP_PORT)}/healthz").is_success
    return up, reset_times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--resets", type=int, default=5)
    ap.add_argument("--nats-nodes", type=int, choices=(1, 3, 5), default=1)
    ap.add_argument(
        "--out", default=None, help="default: reports/bench/bringup.json (bringup-nats3.json, ...)"
    )
    args = ap.parse_args()
    suffix = "" if args.nats_nodes == 1 else f"-nats{args.nats_nodes}"
    args.out = args.out or f"reports/bench/bringup{suffix}.json"
    images = Images("auto")
    images.ensure()
    floors, ups, resets = [], [], []
    for i in range(args.runs):
        floors.append(floor_once(images, args.nats_nodes))
        up, rs = system_once(images, args.resets, args.nats_nodes)
        ups.append(up)
        resets += rs
        shown = [round(r, 2) for r in rs]
        print(f"run {i + 1}: floor {floors[-1]:.2f} s, system {up:.2f} s, resets {shown}")
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cores": os.cpu_count(),
        "nats_nodes": args.nats_nodes,
        "loadavg": os.getloadavg(),
        "floor_s": {"median": statistics.median(floors), "all": floors},
        "system_up_s": {"median": statistics.median(ups), "all": ups},
        "ratio": statistics.median(ups) / statistics.median(floors),
        "reset_s": {"median": statistics.median(resets), "max": max(resets), "all": resets},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"floor {result['floor_s']['median']:.2f} s, system {result['system_up_s']['median']:.2f} s "
        f"({result['ratio']:.2f}x; goal <= 1.5x and < 10 s), "
        f"reset median {result['reset_s']['median']:.2f} s max {result['reset_s']['max']:.2f} s "
        f"(goal < 1 s); written to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
