"""The agent's replay loop (netsync.replay) on a failing disk: a write to the journal or to the answers
file that fails (ENOSPC, EIO) is tried again after the back-off, as an orchestrator that is away; the
loop raised and took the agent down with it, its buffer never drained."""

from __future__ import annotations

import errno
import io

import pytest
import trio

from netsync.agent import Agent
from netsync.logs import Log
from netsync.replay import replay_loop
from tests.unit.lone_agents import lone_settings


def agent_with_pending(tmp_path, n: int) -> tuple[Agent, io.StringIO]:
    out = io.StringIO()
    settings = lone_settings(tmp_path, replay_interval=0.01)
    agent = Agent(settings, Log("agent-1", out))
    for i in range(n):
        agent.buffer.append(agent._decided(f"c{i}", "k", i))
        agent.answers.put(f"c{i}", 202, {"cid": f"c{i}", "outcome": "pending-commit", "quorum_ms": 1.0})
    seqs = iter(range(100, 200))

    async def commit(entry) -> int:
        return next(seqs)

    agent.commit = commit  # type: ignore[method-assign]
    return agent, out


def fail_once(obj: object, name: str, err: int) -> None:
    real, failed = getattr(obj, name), []

    def once(*args):
        if not failed:
            failed.append(args)
            raise OSError(err, "the disk failed")
        return real(*args)

    setattr(obj, name, once)


def drain(agent: Agent) -> None:
    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replay_loop, agent)
            with trio.fail_after(10):
                while len(agent.buffer):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(run)


@pytest.mark.parametrize(
    ("where", "what"),
    [
        ("bump_attempt", "journal write failed"),
        ("complete", "journal write failed"),
        ("answers", "answer not kept"),
    ],
)
def test_a_failed_write_is_logged_and_the_buffer_still_drains(tmp_path, where, what) -> None:
    agent, out = agent_with_pending(tmp_path, 3)
    if where == "answers":
        fail_once(agent.answers, "put", errno.ENOSPC)
    else:
        fail_once(agent.buffer, where, errno.ENOSPC)
    drain(agent)
    assert len(agent.buffer) == 0
    assert [agent.state_of(f"c{i}")[1]["state"] for i in (1, 2)] == ["committed", "committed"]
    assert what in out.getvalue()
