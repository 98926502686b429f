"""A replay's age (`first_attempt_age_s`), never less than it really is (docs/contract.md, "Exactly
once"): measured on the monotonic clock, which no step of the wall clock moves, for a first attempt
read in this boot, also across a restart of the agent (the journal keeps the reading and the boot);
"old" (netsync.buffer.UNTRUSTED_AGE_S) when no clock can vouch for it. Before, a restart left only the
journal's wall-clock time, and a clock stepped back across it made an old replay look young
(agent-restart-clock-step): inside the duplicate window, stored twice."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import trio

from netsync.agent import Agent
from netsync.buffer import JOURNAL_NAME, UNTRUSTED_AGE_S, Pending, first_attempt_age
from netsync.logs import Log
from netsync.settings import AgentSettings
from tests.unit.lone_agents import lone_settings


class Clocks:
    """The two clocks an age reads, moved by hand: the wall clock may step, the monotonic one only runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wall, self.mono = 1_800_000_000.0, 500.0
        monkeypatch.setattr(time, "time", lambda: self.wall)
        monkeypatch.setattr(time, "monotonic", lambda: self.mono)

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def decided(clocks: Clocks, boot: str | None = "boot-1") -> Pending:
    return Pending("c1", "k", 1, "agent-1", clocks.wall, clocks.wall, 1, clocks.mono, boot)


def test_a_step_of_the_wall_clock_back_does_not_make_a_replay_younger(monkeypatch) -> None:
    clocks = Clocks(monkeypatch)
    entry = decided(clocks)
    clocks.run(7.0)
    clocks.wall -= 30.0  # the clock fault ends: the agent's clock steps back to the host's
    assert first_attempt_age(entry, "boot-1") == pytest.approx(7.0)


def test_a_step_forward_or_a_suspended_host_makes_a_replay_older_never_younger(monkeypatch) -> None:
    clocks = Clocks(monkeypatch)
    entry = decided(clocks)
    clocks.run(7.0)
    clocks.wall += 20.0  # the wall clock ran on while the monotonic one stood (a suspend), or stepped
    assert first_attempt_age(entry, "boot-1") == pytest.approx(27.0)


@pytest.mark.parametrize(
    "where",
    ["another boot", "no monotonic reading (an older journal)", "a reading ahead of the clock now"],
)
def test_an_age_no_clock_can_vouch_for_is_old(monkeypatch, where: str) -> None:
    clocks = Clocks(monkeypatch)
    entry = {
        "another boot": decided(clocks, boot="boot-0"),
        "no monotonic reading (an older journal)": Pending("c1", "k", 1, "a", clocks.wall, clocks.wall, 1),
        "a reading ahead of the clock now": decided(clocks),
    }[where]
    clocks.run(3.0)
    if where.startswith("a reading ahead"):
        clocks.mono -= 100.0  # another clock namespace: the reading cannot be compared
    assert first_attempt_age(entry, "boot-1") == UNTRUSTED_AGE_S
    assert UNTRUSTED_AGE_S > 10 * 86400  # past any duplicate window: the orchestrator looks it up


# -- across a restart of the agent, as the orchestrator is told ------------------------------------


def settings(journal_dir, bugs: frozenset[str] = frozenset()) -> AgentSettings:
    return lone_settings(journal_dir, bugs=bugs)


def decide_while_the_orchestrator_is_away(agent: Agent, cid: str) -> int:
    async def unreachable(entry: Pending) -> int | None:
        return None

    agent.commit = unreachable  # type: ignore[method-assign]

    async def post() -> int:
        async with trio.open_nursery() as nursery:
            agent._nursery = nursery
            return (await agent.submit("k", 5, cid)).status

    return trio.run(post)


def first_replay_frame(agent: Agent) -> dict[str, Any]:
    """The decision frame the restarted agent sends for the head of its journal."""
    sent: list[dict[str, Any]] = []

    async def request(peer, protocol, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        sent.append(payload)
        return {"cid": payload["cid"], "status": "committed", "seq": 1, "duplicate": True}

    agent.node.request = request  # type: ignore[method-assign]
    head = agent.buffer.bump_attempt(agent.buffer.head().cid)  # type: ignore[union-attr]
    assert trio.run(agent.commit, head) == 1
    return sent[0]


def restart_with_the_clock_stepped_back(monkeypatch, tmp_path, bugs=frozenset()) -> dict[str, Any]:
    clocks = Clocks(monkeypatch)
    clocks.wall += 30.0  # agent-1's clock runs 30 s ahead while it decides
    before = Agent(settings(tmp_path), Log("agent-1", io.StringIO()))
    assert decide_while_the_orchestrator_is_away(before, "c1") == 202
    before.buffer.close()  # killed: what is left is the journal
    clocks.run(12.0)  # down, restarted, waiting for the orchestrator
    clocks.wall -= 30.0  # the skew ended while it was down
    after = Agent(settings(tmp_path, bugs), Log("agent-1", io.StringIO()))
    return first_replay_frame(after)


def test_a_replay_after_a_restart_with_the_clock_stepped_back_is_as_old_as_it_is(
    monkeypatch, tmp_path
) -> None:
    frame = restart_with_the_clock_stepped_back(monkeypatch, tmp_path)
    # By the wall clock the intent is -18 s old (0 once clamped): inside a 2 s duplicate window.
    assert (frame["attempt"], frame["first_attempt_age_s"]) == (2, pytest.approx(12.0))


def test_the_journal_keeps_the_monotonic_reading_and_the_boot(monkeypatch, tmp_path) -> None:
    clocks = Clocks(monkeypatch)
    agent = Agent(settings(tmp_path), Log("agent-1", io.StringIO()))
    decide_while_the_orchestrator_is_away(agent, "c1")
    (line,) = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    kept = json.loads(line)
    assert (kept["first_attempt_mono"], kept["boot"]) == (clocks.mono, agent.boot)


def test_planted_trust_journal_clock_ages_it_by_the_wall_clock_alone(monkeypatch, tmp_path) -> None:
    frame = restart_with_the_clock_stepped_back(monkeypatch, tmp_path, frozenset({"trust-journal-clock"}))
    assert frame["first_attempt_age_s"] == 0.0  # the mistake the scenario must catch
