"""A reaper that speaks Ryuk's protocol, for engines that cannot pull testcontainers/ryuk.

Clients connect to TCP 8080 and send filter lines (`label=key=value`, several joined
by `&`); each line is answered `ACK`. Once every connection has been closed for
RYUK_RECONNECTION_TIMEOUT, everything matching any filter (containers, then networks,
then volumes) is removed and the reaper exits. A reaper nobody connects to within
RYUK_CONNECTION_TIMEOUT exits without removing anything. It outlives the harness
process, so a run killed with SIGKILL still leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import socketserver
import sys
import threading
import time
from urllib.parse import parse_qs

import docker.errors

import docker

PORT = 8080


def parse_duration(text: str, default: float) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        return default
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


def parse_filter_line(line: str) -> dict[str, list[str]]:
    """`label=a=b&label=c=d` -> {"label": ["a=b", "c=d"]} (Docker API filter form)."""
    return {k: v for k, v in parse_qs(line.strip(), keep_blank_values=False).items() if v}


class Reaper:
    def __init__(self, connect_timeout: float, reconnect_timeout: float) -> None:
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
        for f in self.filters:
            removed = {"containers": 0, "networks": 0, "volumes": 0}
            for ctr in client.containers.list(all=True, filters=f):
                if ctr.id.startswith(os.environ.get("HOSTNAME", "~")):
                    continue  # never ourselves
                try:
                    ctr.remove(force=True, v=True)
                    removed["containers"] += 1
                except docker.errors.NotFound:
                    pass
            # A network can be busy for a moment after its containers went.
            for _attempt in range(10):
                pending = client.networks.list(filters=f)
                for net in pending:
                    try:
                        net.remove()
                        removed["networks"] += 1
                    except docker.errors.NotFound:
                        pass
                    except docker.errors.APIError:
                        pass
                if not client.networks.list(filters=f):
                    break
                time.sleep(0.5)
            for vol in client.volumes.list(filters=f):
                try:
                    vol.remove(force=True)
                    removed["volumes"] += 1
                except docker.errors.APIError:
                    pass
            print(f"reaper: removed {removed} for {f}", flush=True)


def main() -> int:
    reaper = Reaper(
        parse_duration(os.environ.get("RYUK_CONNECTION_TIMEOUT", ""), 60.0),
        parse_duration(os.environ.get("RYUK_RECONNECTION_TIMEOUT", ""), 10.0),
    )

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            reaper.connected(+1)
            try:
                for raw in self.rfile:
                    line = raw.decode(errors="replace").strip()
                    if not line:
                        continue
                    f = parse_filter_line(line)
                    if f:
                        reaper.add_filter(f)
                        print(f"reaper: watching {f}", flush=True)
                    self.wfile.write(b"ACK\n")
                    self.wfile.flush()
            except OSError:
                pass
            finally:
                reaper.connected(-1)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("0.0.0.0", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = docker.from_env()
    client.ping()
    # Testcontainers waits for a log line matching ".* Started!".
    print(f"reaper: listening on {PORT}; Started!", flush=True)
    if reaper.wait_until_abandoned():
        reaper.reap(client)
    else:
        print("reaper: nobody connected; exiting", flush=True)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
