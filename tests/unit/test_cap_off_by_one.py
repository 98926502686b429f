"""buggify cap-off-by-one: the agent admits a decision while its buffer already holds NETSYNC_BUFFER_CAP
(checks depth > cap), so the buffer holds cap + 1; the clean agent answers 429 at the cap
(docs/contract.md, "Pending-commit buffer")."""

from __future__ import annotations

import io

import pytest
import trio

from netsync.agent import Agent
from netsync.logs import Log
from tests.unit.lone_agents import lone_settings


def buffered(tmp_path, bugs: frozenset[str], cap: int, n: int) -> tuple[list[int], Agent]:
    """`n` intents to an agent whose orchestrator never answers: each answer, and the agent."""
    agent = Agent(lone_settings(tmp_path, bugs=bugs, buffer_cap=cap), Log("agent-1", io.StringIO()))

    async def commit(entry) -> None:
        return None

    agent.commit = commit  # type: ignore[method-assign]
    statuses: list[int] = []

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            agent._nursery = nursery
            for i in range(n):
                statuses.append((await agent.submit("k", 1, f"c{i}")).status)
            nursery.cancel_scope.cancel()

    trio.run(run)
    return statuses, agent


@pytest.mark.parametrize("cap", [1, 3])
def test_the_clean_agent_answers_429_once_the_buffer_holds_its_cap(tmp_path, cap) -> None:
    statuses, agent = buffered(tmp_path, frozenset(), cap, cap + 2)
    assert statuses == [202] * cap + [429, 429]
    assert len(agent.buffer) == cap


@pytest.mark.parametrize("cap", [1, 3])
def test_cap_off_by_one_admits_one_more_than_the_cap(tmp_path, cap) -> None:
    statuses, agent = buffered(tmp_path, frozenset({"cap-off-by-one"}), cap, cap + 2)
    assert statuses == [202] * (cap + 1) + [429]
    assert len(agent.buffer) == cap + 1
