"""Fixtures shared by the process-level tests: real servers on 127.0.0.1, killed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netsync_procs import NatsServer, SurrealServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as s:
        yield s


@pytest.fixture
def surreal_server(tmp_path: Path) -> Iterator[SurrealServer]:
    with SurrealServer(tmp_path / "surreal") as s:
        yield s
