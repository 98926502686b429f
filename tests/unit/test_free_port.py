"""free_port: the host ports the harness publishes containers on."""

from __future__ import annotations

import socket

from harness.topology import ports as handed
from harness.topology.ports import free_port


def test_ports_lie_below_the_kernels_ephemeral_range_and_are_never_given_twice() -> None:
    low, _ = handed._ephemeral_range()
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(handed._LOWEST <= p < low for p in ports), "an outgoing connection could take it"


def test_a_port_someone_listens_on_is_skipped(monkeypatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        # A window of exactly 1,000 ports that starts at the held one.
        monkeypatch.setattr(handed, "_LOWEST", taken)
        monkeypatch.setattr(handed, "_ephemeral_range", lambda: (taken + 1000, taken + 2000))
        monkeypatch.setattr(handed.random, "randrange", lambda n: 0)
        port = free_port()
        assert port != taken
        assert taken < port < taken + 1000
