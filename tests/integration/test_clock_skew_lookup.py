"""A replay past the duplicate window from an agent whose clock runs ahead of NATS's by more than the
lookup's 5 s of slack (docs/contract.md, "Exactly once"): the orchestrator must date it by its age, not by
the agent's clock, find it in the stream and publish nothing. With `trust-agent-clock` (the code before the
fix, kept as a planted bug) it is stored twice."""

from __future__ import annotations

import asyncio
import time

import pytest

from netsync.logs import Log
from netsync.orchestrator import Committer
from netsync.settings import StreamSettings
from tests.integration.netsync_procs import NatsServer

WINDOW_S = 1.0
AHEAD_S = 30.0  # the agent's clock, ahead of the host's (and NATS's)


def _decision(attempt: int, first_real: float) -> dict:
    """The frame a netsync agent 30 s ahead sends: its clock in first_attempt_at, the age measured on it."""
    now_agent, first_agent = time.time() + AHEAD_S, first_real + AHEAD_S
    return {
        "type": "decision",
        "cid": "skewed-1",
        "key": "k1",
        "value": 1,
        "proposer": "agent-1",
        "decided_at": first_agent,
        "first_attempt_at": first_agent,
        "first_attempt_age_s": now_agent - first_agent,
        "attempt": attempt,
    }


async def _publish_then_replay(nats_server: NatsServer, bugs: frozenset[str]) -> tuple[int, int, int]:
    """(first seq, replay's seq, messages in the stream)."""
    stream = StreamSettings(duplicate_window_s=WINDOW_S)
    committer = Committer(nats_server.url, stream, 2.0, Log("skew-test"), bugs)
    await committer.connect()
    try:
        await committer.ensure_stream()
        first_real = time.time()
        seq, _ = await committer.publish(_decision(1, first_real))  # stored; say its ack was lost
        await asyncio.sleep(WINDOW_S + 0.5)  # past the window: NATS no longer drops the same Nats-Msg-Id
        again, _ = await committer.publish(_decision(2, first_real))
        assert committer.nc is not None
        info = await committer.nc.jetstream().stream_info(stream.name)
        return seq, again, info.state.messages
    finally:
        await committer.close()


async def test_a_replay_from_an_agent_clock_ahead_is_found_not_stored_again(nats_server: NatsServer) -> None:
    seq, again, messages = await _publish_then_replay(nats_server, frozenset())
    assert (again, messages) == (seq, 1)


@pytest.mark.parametrize("bug", ["trust-agent-clock"])
async def test_trusting_the_agent_clock_stores_it_twice(nats_server: NatsServer, bug: str) -> None:
    seq, again, messages = await _publish_then_replay(nats_server, frozenset({bug}))
    assert again != seq and messages == 2
