"""How the integration tests tell what reaches what: a program run inside a container that tries HOST:PORT
over TCP (`CONNECT`: it prints `connected`, or `failed <why>`: a refusal, a timeout after 2 s, a name that
does not resolve), a node's address, a pair of nodes cut apart or healed through Toxiproxy, and round trips
from one node to an echo server in another (ECHO, PING_PONG), directly or through Toxiproxy."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

from harness.toxiproxy import Toxic, Toxiproxy

if TYPE_CHECKING:
    from harness.topology.system import System

CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
    "    print('connected')\n"
    "except OSError as e:\n"
    "    print('failed', e)\n"
)

# Who answers at HOST:PORT: IDENTIFY, run in a container, serves its hostname to every connection on
# IDENTITY_PORT; WHO connects and prints `reached <the hostname it read>`, or `failed <why>`. Where something
# on the way accepts any connection (a machine whose egress is a proxy), a connection alone proves nothing:
# what answers must be the node itself.
IDENTITY_PORT = 7001
IDENTIFY = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {IDENTITY_PORT})); s.listen()\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(socket.gethostname().encode()); c.close()\n"
)
WHO = (
    "import socket, sys\n"
    "try:\n"
    "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
    "    print('reached', s.recv(256).decode(errors='replace') or '(nothing)')\n"
    "except OSError as e:\n"
    "    print('failed', e)\n"
)

ECHO_PORT = 7000
# A TCP echo server, then a client: `n` round trips of 64 bytes, one at a time; prints the median and
# 99th percentile in microseconds. Python of the project's base image, nothing else.
ECHO = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('0.0.0.0', {ECHO_PORT})); s.listen()\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    while d := c.recv(4096): c.sendall(d)\n"
)
PING_PONG = (
    "import json, socket, sys, time\n"
    "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
    "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
    "t = []\n"
    "for _ in range(int(sys.argv[3])):\n"
    "    t0 = time.perf_counter(); s.sendall(b'x' * 64); n = 0\n"
    "    while n < 64: n += len(s.recv(64))\n"
    "    t.append(time.perf_counter() - t0)\n"
    "t.sort()\n"
    "n = len(t)\n"
    "print(json.dumps({'n': n, 'p50_us': t[n // 2] * 1e6, 'p99_us': t[n * 99 // 100] * 1e6}))\n"
)


def tcp_from(sut: System, node: str, host: str, port: int) -> str:
    """What CONNECT prints, run in `node`'s container."""
    out = sut.run.raw(node).exec_run(["python", "-c", CONNECT, host, str(port)]).output.decode()
    return out.strip()


def who_answers(sut: System, src: str, dst: str) -> str:
    """What WHO prints in `src` for `dst`'s own address (on its own network) at IDENTITY_PORT, where
    IDENTIFY serves dst's hostname: `reached <hostname>` only when the connection got to dst itself."""
    sut.run.raw(dst).exec_run(["python", "-c", IDENTIFY], detach=True)
    hostname = sut.run.raw(dst).attrs["Config"]["Hostname"]
    for _ in range(50):  # until it listens: dst reaches itself
        if tcp_from(sut, dst, "127.0.0.1", IDENTITY_PORT) == "connected":
            break
        time.sleep(0.1)
    out = sut.run.raw(src).exec_run(["python", "-c", WHO, ip_of(sut, dst), str(IDENTITY_PORT)]).output
    got = out.decode().strip()
    return f"{got} (dst is {hostname})" if got.startswith("reached") else got


def ip_of(sut: System, node: str) -> str:
    """The node's address on its own network."""
    nets = sut.run.raw(node).attrs["NetworkSettings"]["Networks"]
    return next(iter(nets.values()))["IPAddress"]


async def set_pair(sut: System, a: str, b: str, mode: str | None) -> None:
    """Cut both directions between a and b (`refuse` or `blackhole`), or heal (None)."""
    async with Toxiproxy(sut.toxiproxy_url) as tp:
        for link in (f"{a}>{b}", f"{b}>{a}"):
            if mode is None:
                await tp.set_enabled(link, True)
                for t in (await tp.proxies())[link].toxics:
                    await tp.remove_toxic(link, t.name)
            elif mode == "refuse":
                await tp.set_enabled(link, False)
            else:
                for stream in ("upstream", "downstream"):
                    await tp.add_toxic(link, Toxic(f"bh-{stream}", "timeout", stream, 1.0, {"timeout": 0}))


def round_trips_via(sut: System, src: str, dst: str, n: int = 300) -> dict:
    """`n` round trips of 64 bytes from `src` to an echo server in `dst`'s container, through a Toxiproxy
    proxy of the run's (made here, removed after): what a data-plane link's hop costs, as PING_PONG prints
    it (n, p50_us, p99_us). Both containers need python (netsync's nodes have it)."""
    sut.run.raw(dst).exec_run(["python", "-c", ECHO], detach=True)
    name, port = f"echo-{src}-{dst}", 29000 + len(sut.links)

    async def proxy(create: bool) -> None:
        async with Toxiproxy(sut.toxiproxy_url) as tp:
            if create:
                await tp.create(name, f"0.0.0.0:{port}", f"{dst}:{ECHO_PORT}")
            else:
                await tp.delete(name)

    asyncio.run(proxy(True))
    try:
        for _ in range(50):  # the echo server binds within a second
            if tcp_from(sut, src, "toxiproxy", port) == "connected":
                break
            time.sleep(0.1)
        out = sut.run.raw(src).exec_run(["python", "-c", PING_PONG, "toxiproxy", str(port), str(n)]).output
        return json.loads(out.decode())
    finally:
        asyncio.run(proxy(False))
