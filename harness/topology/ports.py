"""Ports of this machine the harness hands out: where a container's port is published, where a Locust
master listens; and this machine's address on its route to another host."""

from __future__ import annotations

import random
import socket

_GIVEN: set[int] = set()  # every port free_port() handed out in this process
_LOWEST = 20000  # below this sit the ports people run their own services on
_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Docker picks its own
    dynamic ports from it too); (32768, 60999) where the file cannot be read."""
    try:
        with open(_RANGE_FILE) as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 now, outside the kernel's ephemeral range, and never one this
    process handed out before.

    Outside the ephemeral range, because between this check and Docker binding the port any
    outgoing connection on the machine may be given it as its local port: a fresh-clone CI run
    lost a bring-up to "listen tcp4 127.0.0.1:32771: bind: address already in use", 32771 being
    the third port of that range. Never twice, because two containers published on one port fail
    to start ("port is already allocated"). Another process that binds fixed ports may still take
    it first; then Docker fails to bind it and start() says so."""
    low, _ = _ephemeral_range()
    if low - _LOWEST >= 1000:
        candidates = range(_LOWEST, low)
        start = random.randrange(len(candidates))
        for i in range(len(candidates)):
            port = candidates[(start + i) % len(candidates)]
            if port not in _GIVEN and _bindable(port):
                _GIVEN.add(port)
                return port
    while True:  # no room below the ephemeral range: let the kernel choose
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def route_address(ip: str) -> str:
    """This machine's address on its route to `ip` (no packet is sent: a UDP socket's connect only picks
    the route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        return str(s.getsockname()[0])
