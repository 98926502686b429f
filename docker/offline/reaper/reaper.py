"""A reaper that speaks Ryuk's protocol, for one run of the harness.

It is started for the run named by SOLAR_CHAOS_RUN (it refuses to start without it). Clients
connect to TCP 8080 and send filter lines (`label=key=value`, several joined by `&`). A line is
accepted, answered `ACK`, only when it selects by that run's label (`label=solar-chaos.run=<id>`,
other labels may narrow it further); anything else is answered `ERR <why>` and the connection
closed, so whoever reaches the port cannot have it remove anything else (one `status=running`
would otherwise remove every running container of the engine). And whatever a filter says, only
resources that carry the run's label are removed.

Once every client that sent an accepted filter has been gone for RYUK_RECONNECTION_TIMEOUT,
everything matching (containers, then networks, then volumes) is removed and the reaper exits. A
reaper no client registers with within RYUK_CONNECTION_TIMEOUT exits without removing anything.
It outlives the harness process, so a run killed with SIGKILL still leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import socketserver
import sys
import threading
import time
from typing import BinaryIO
from urllib.parse import parse_qs

import docker.errors

import docker

PORT = 8080
RUN_LABEL = "solar-chaos.run"  # harness/engine.py's RUN_LABEL: the image cannot import the harness
MAX_LINE = 4096  # a filter line is a few dozen bytes; a longer one is refused, not buffered


def parse_duration(text: str, default: float) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        return default
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


def parse_filter_line(line: str) -> dict[str, list[str]]:
    """`label=a=b&label=c=d` -> {"label": ["a=b", "c=d"]} (Docker API filter form)."""
    return {k: v for k, v in parse_qs(line.strip(), keep_blank_values=False).items() if v}


class Refused(ValueError):
    """A filter line the reaper does not take; the message says why and what is allowed."""


def accept_filter(line: str, run_id: str) -> dict[str, list[str]]:
    """The Docker filter of a line that selects the run's resources by its label, or Refused. Docker ANDs
    the values of `label`, so more labels beside the run's only narrow it; any other key (status, name,
    id, ...) or a filter without the run's label could reach what is not the run's."""
    allowed = f"only label={RUN_LABEL}={run_id} (more label= terms may narrow it)"
    try:
        f = parse_filter_line(line)
    except ValueError as e:
        raise Refused(f"not a filter ({e}): {allowed}") from None
    if not f:
        raise Refused(f"not a filter: {allowed}")
    others = sorted(k for k in f if k != "label")
    if others:
        raise Refused(f"filter by {', '.join(map(repr, others))} refused: {allowed}")
    if f"{RUN_LABEL}={run_id}" not in f["label"]:
        raise Refused(f"a filter without this run's label refused: {allowed}")
    return f


def is_the_runs(labels: dict[str, str] | None, run_id: str) -> bool:
    return (labels or {}).get(RUN_LABEL) == run_id


class Reaper:
    def __init__(self, connect_timeout: float, reconnect_timeout: float, run_id: str = "") -> None:
        self.run_id = run_id
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self.filters: list[dict[str, list[str]]] = []
        self.lock = threading.Lock()
        self.connections = 0
        self.ever_connected = False
        self.last_change = time.monotonic()

    def add_filter(self, f: dict[str, list[str]]) -> None:
        with self.lock:
            if f not in self.filters:
                self.filters.append(f)

    def connected(self, delta: int) -> None:
        with self.lock:
            self.connections += delta
            self.ever_connected = True
            self.last_change = time.monotonic()

    def wait_until_abandoned(self) -> bool:
        """True once the clients are gone for the grace period; False if none came."""
        start = time.monotonic()
        while True:
            time.sleep(0.2)
            with self.lock:
                now = time.monotonic()
                if not self.ever_connected and now - start > self.connect_timeout:
                    return False
                if (
                    self.ever_connected
                    and self.connections == 0
                    and now - self.last_change > self.reconnect_timeout
                ):
                    return True

    def reap(self, client: docker.DockerClient) -> None:
        """Remove what the filters select, of what carries the run's label: a filter cannot widen that,
        and the run's label is added to each listing so the engine does not even list the rest."""
        own = f"{RUN_LABEL}={self.run_id}"
        for accepted in self.filters:
            f = {**accepted, "label": sorted({*accepted.get("label", []), own})}
            removed = {"containers": 0, "networks": 0, "volumes": 0}
            for ctr in client.containers.list(all=True, filters=f):
                if ctr.id.startswith(os.environ.get("HOSTNAME", "~")) or not is_the_runs(
                    ctr.labels, self.run_id
                ):
                    continue  # never ourselves, nor what is not the run's
                try:
                    ctr.remove(force=True, v=True)
                    removed["containers"] += 1
                except docker.errors.NotFound:
                    pass
            # A network can be busy for a moment after its containers went.
            for _attempt in range(10):
                pending = [
                    n
                    for n in client.networks.list(filters=f)
                    if is_the_runs(n.attrs.get("Labels"), self.run_id)
                ]
                for net in pending:
                    try:
                        net.remove()
                        removed["networks"] += 1
                    except docker.errors.NotFound:
                        pass
                    except docker.errors.APIError:
                        pass
                if not pending:
                    break
                time.sleep(0.5)
            for vol in client.volumes.list(filters=f):
                if not is_the_runs(vol.attrs.get("Labels"), self.run_id):
                    continue
                try:
                    vol.remove(force=True)
                    removed["volumes"] += 1
                except docker.errors.APIError:
                    pass
            print(f"reaper: removed {removed} for {f}", flush=True)


def serve_client(reaper: Reaper, rfile: BinaryIO, wfile: BinaryIO) -> None:
    """One client: each accepted line ACKed; the first refused line answered ERR and the connection
    dropped. Only a client that had a filter accepted counts as one the reaper waits for, so a stranger
    holding a connection open does not keep the run from being reaped."""
    registered = False
    try:
        while True:
            raw = rfile.readline(MAX_LINE + 1)
            if not raw:
                return
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                wfile.write(f"ERR line longer than {MAX_LINE} bytes\n".encode())
                wfile.flush()
                return
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                f = accept_filter(line, reaper.run_id)
            except Refused as e:
                print(f"reaper: refused {line[:200]!r}: {e}", flush=True)
                wfile.write(f"ERR {e}\n".encode())
                wfile.flush()
                return
            reaper.add_filter(f)
            if not registered:
                registered = True
                reaper.connected(+1)
            print(f"reaper: watching {f}", flush=True)
            wfile.write(b"ACK\n")
            wfile.flush()
    except OSError:
        pass
    finally:
        if registered:
            reaper.connected(-1)


def main() -> int:
    run_id = os.environ.get("SOLAR_CHAOS_RUN", "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", run_id):
        print(f"reaper: SOLAR_CHAOS_RUN={run_id!r} is not a run id; it names the one run this reaper serves")
        return 2
    reaper = Reaper(
        parse_duration(os.environ.get("RYUK_CONNECTION_TIMEOUT", ""), 60.0),
        parse_duration(os.environ.get("RYUK_RECONNECTION_TIMEOUT", ""), 10.0),
        run_id,
    )

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            serve_client(reaper, self.rfile, self.wfile)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    # 0.0.0.0 inside the container, where the engine's port forward arrives; the harness publishes the
    # port on the host's 127.0.0.1 only.
    server = socketserver.ThreadingTCPServer(("0.0.0.0", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = docker.from_env()
    client.ping()
    # Testcontainers waits for a log line matching ".* Started!".
    print(f"reaper: run {run_id}, listening on {PORT}; Started!", flush=True)
    if reaper.wait_until_abandoned():
        reaper.reap(client)
    else:
        print("reaper: nobody registered; exiting", flush=True)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
