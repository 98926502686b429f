"""Remote Locust workers (issue 32): `--load-workers N` with the workers on other engines, in Locust's own
distributed mode. The master runs here, as a subprocess of the harness like today (harness/load/
locust_engine.py); each worker is a container of the `load` image (docker/load: Python, locust, and the
harness's load code alone) on its engine, connecting to the master's port.

- Where: the caller hands one engine per worker (`Target`s of the run's fleet: `.client`, `.name`,
  `.reach_ip`, `.local`, `.loaded`). Which engines is the placement's to say (docs/scale.md, "Load from
  other hosts": the role `load` in `topology.hosts`).
- The master's address: the address of this machine on its route to each engine (for a stand-in engine, the
  host side of its bridge network; for a real host, the interface that reaches it). The master binds that
  one address when every engine is reached through it, else every address (0.0.0.0). A worker on this
  machine's own engine uses the host's network and 127.0.0.1.
- The plan: inline, in the container's environment ($SOLAR_CHAOS_LOAD_JSON, the same config plan.json holds,
  with `"remote": true`). Each worker takes its share by the index the master gives it, as a local one does.
- t = 0 and the clock: a remote worker shares neither this machine's CLOCK_MONOTONIC nor its folder. The
  master relays t = 0 as a Locust message `sc-start` holding the seconds since t = 0 when it is sent; the
  worker takes its t = 0 as its own monotonic time on receipt minus that. Its times are so early by the
  message's one-way delay, at most the round trip of `sc-start` and the worker's answer `sc-started`, which
  the master writes to `clock-K` (`round_trip_s`); `merge.json` carries them as `clock_bound_s`. Over a run,
  the two clocks' rates differ by parts per million (NTP-disciplined or not): microseconds per minute.
- The history shard: the worker sends its lines to the master as Locust messages (`sc-lines`, every 0.2 s
  and before each marker), and its markers (`ready-K`, `count-K`, `done-K`) as `sc-marker`; the master
  writes both into the run's `locust/` folder exactly as a local worker would have. So the waits, the
  progress line, the `repeat` fault's `answered()` and the merge into history.jsonl are today's. A worker
  killed mid-run loses at most its last 0.2 s of lines: those operations end as invokes alone (unknown).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import docker.errors

from harness import engine
from harness.shape import LOAD
from harness.topology.engines import send_image
from harness.topology.ports import route_address

ROLE = LOAD  # the image's role (docker/images.toml) and the workers' node names: load-1, load-2, ...
ANY_ADDRESS = "0.0.0.0"
CHECK_S = 1.0  # how often the waits ask the engines whether a worker has exited


class Engine(Protocol):
    """What a worker needs of its engine (harness/topology/fleet.py's Target)."""

    name: str
    client: docker.DockerClient
    reach_ip: str
    local: bool
    loaded: set[str]


def master_addresses(engines: Sequence[Engine]) -> tuple[str, list[str]]:
    """Where the master binds, and the address each engine's worker connects to."""
    connect = ["127.0.0.1" if e.local else route_address(e.reach_ip) for e in engines]
    distinct = set(connect)
    return (distinct.pop() if len(distinct) == 1 else ANY_ADDRESS), connect


class RemoteWorkers:
    """The workers' containers, one per engine, removed (their logs kept in `folder`) by `stop()`."""

    def __init__(self, engines: Sequence[Engine], image: str, run_id: str, folder: Path) -> None:
        self.engines = list(engines)
        self.image, self.run_id, self.folder = image, run_id, folder
        self.containers: list[Any] = []
        self._checked = 0.0

    def start(self, config: dict[str, Any], port: int, connect: Sequence[str]) -> None:
        env = {"SOLAR_CHAOS_LOAD_JSON": json.dumps({**config, "remote": True}), "PYTHONUNBUFFERED": "1"}
        for k, (e, host) in enumerate(zip(self.engines, connect, strict=True), 1):
            send_image(e.client, self.image, e.loaded, e.name)
            name = f"{ROLE}-{k}"
            self.containers.append(
                e.client.containers.run(
                    self.image,
                    ["--master-host", host, "--master-port", str(port), "--loglevel", "INFO"],
                    name=f"sc-{self.run_id}-{name}",
                    # not NODE_LABEL: a worker is no node of the system under test, and its end when the
                    # load is done is no unplanned death (harness/observe/events.py reads that label)
                    labels={**engine.run_labels(self.run_id), engine.LOAD_LABEL: name},
                    environment=env,
                    network_mode="host" if e.local else None,
                    detach=True,
                )
            )

    def exited(self) -> tuple[str, int, str] | None:
        """A worker that has exited, as (node, exit code, its log's tail), or None (also when asked again
        within CHECK_S)."""
        if time.monotonic() < self._checked + CHECK_S:
            return None
        self._checked = time.monotonic()
        for k, c in enumerate(self.containers, 1):
            with contextlib.suppress(docker.errors.DockerException):
                c.reload()
                if c.status in ("exited", "dead"):
                    code = c.attrs["State"]["ExitCode"]
                    tail = c.logs(tail=30).decode(errors="replace")
                    return f"{ROLE}-{k} on {self.engines[k - 1].name}", code, tail
        return None

    def stop(self, timeout: float) -> list[str]:
        """Wait up to `timeout` s for each worker to quit (the master tells them to), keep its log as
        `load-K.out`, remove it; returns what could not be done."""
        problems: list[str] = []
        for k, c in enumerate(self.containers, 1):
            try:
                with contextlib.suppress(docker.errors.DockerException, OSError):
                    c.wait(timeout=timeout)
                (self.folder / f"{ROLE}-{k}.out").write_bytes(c.logs())
                c.remove(force=True)
            except docker.errors.DockerException as e:
                problems.append(f"{ROLE}-{k}: {e}")
        self.containers.clear()
        return problems


def clock_bounds(folder: Path, workers: int) -> dict[str, float | None]:
    """Each worker's clock error bound (the round trip of sc-start), from the master's `clock-K` files."""
    out: dict[str, float | None] = {}
    for k in range(workers):
        try:
            out[str(k)] = float(json.loads((folder / f"clock-{k}").read_text())["round_trip_s"])
        except (OSError, ValueError, KeyError, TypeError):
            out[str(k)] = None
    return out
