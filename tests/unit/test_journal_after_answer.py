"""buggify journal-after-answer (netsync.replay.journal_after_answer): the agent answers 202 first and
journals the decision right after it. What a crash at the moment of the answer would find on disk: with
the flag, not that decision; without it, the decision (docs/contract.md, "Pending-commit buffer")."""

from __future__ import annotations

import io

import pytest
import trio

from netsync.agent import Agent
from netsync.buffer import JOURNAL_NAME
from netsync.logs import Log
from tests.unit.lone_agents import lone_settings


def unreachable_agent(tmp_path, bugs: frozenset[str], cap: int = 8) -> Agent:
    """An agent that is its own quorum and whose orchestrator never answers: each decision is buffered."""
    agent = Agent(lone_settings(tmp_path, bugs=bugs, buffer_cap=cap), Log("agent-1", io.StringIO()))

    async def commit(entry) -> None:
        return None

    agent.commit = commit  # type: ignore[method-assign]
    return agent


def journaled(tmp_path, cid: str) -> bool:
    """Whether the journal on disk holds `cid`'s add: what a restart after a crash now would replay."""
    return f'"cid":"{cid}"'.encode() in (tmp_path / JOURNAL_NAME).read_bytes()


def accepted(cids: list[str], seen: list[tuple[int, bool]]) -> list[str]:
    return [cid for cid, (status, _) in zip(cids, seen, strict=True) if status == 202]


def submit_and_look(agent: Agent, tmp_path, cids: list[str]) -> tuple[list[tuple[int, bool]], bool]:
    """Each cid's answer and whether the journal held it at the moment of that answer; then, after a
    while, whether the journal holds them all."""
    seen: list[tuple[int, bool]] = []

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            agent._nursery = nursery
            for cid in cids:
                ans = await agent.submit("k", 1, cid)
                seen.append((ans.status, journaled(tmp_path, cid)))
            with trio.fail_after(5):
                while not all(agent.buffer.contains(c) for c in accepted(cids, seen)):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(run)
    return seen, all(journaled(tmp_path, c) for c in accepted(cids, seen))


def test_the_clean_agent_journals_each_decision_before_its_202(tmp_path) -> None:
    seen, later = submit_and_look(unreachable_agent(tmp_path, frozenset()), tmp_path, ["a", "b"])
    assert seen == [(202, True), (202, True)]
    assert later


def test_journal_after_answer_sends_the_202_before_the_journal_has_it(tmp_path) -> None:
    seen, later = submit_and_look(
        unreachable_agent(tmp_path, frozenset({"journal-after-answer"})), tmp_path, ["a"]
    )
    assert seen == [(202, False)]
    assert later  # journaled all the same, a few milliseconds after the answer


@pytest.mark.parametrize("bugs", [frozenset(), frozenset({"journal-after-answer"})])
def test_a_decision_not_yet_journaled_still_takes_its_place_in_the_buffer(tmp_path, bugs) -> None:
    """The cap counts a decision answered 202 whose journal write is still to come: that bug is about
    the order of the answer and the journal, not about the cap."""
    seen, _ = submit_and_look(unreachable_agent(tmp_path, bugs, cap=1), tmp_path, ["a", "b"])
    assert [status for status, _ in seen] == [202, 429]
