"""The settings of an agent that is its own quorum, for unit tests of netsync's agent without a
network: its orchestrator's address is never dialled (each test replaces the orchestrator)."""

from __future__ import annotations

from typing import Any

from netsync.settings import AgentSettings

ORCHESTRATOR = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"


def lone_settings(journal_dir: Any, **overrides: Any) -> AgentSettings:
    """agent-1, quorum 1, a buffer of 8, short timeouts; `overrides` replace any field."""
    fields: dict[str, Any] = {
        "name": "agent-1",
        "identity_seed": "agent-1",
        "listen": "/ip4/127.0.0.1/tcp/0",
        "peers": {},
        "orchestrator": ORCHESTRATOR,
        "quorum": 1,
        "buffer_cap": 8,
        "journal_dir": str(journal_dir),
        "intent_timeout": 0.08,
        "commit_timeout": 0.4,
        "replay_interval": 0.2,
        "value_min": -10,
        "value_max": 10,
        "http_port": 0,
    }
    return AgentSettings(**{**fields, **overrides})
