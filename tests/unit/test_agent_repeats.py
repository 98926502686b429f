"""A repeat of a cid that arrives while its first request is still in flight (docs/contract.md, "Agent
HTTP API"): it gets the first's answer, and when the first failed without one (an exception, answered
500), the contract's answer for that cid, decided again; before, it answered 500 as well (issue 27)."""

from __future__ import annotations

import errno
import io
from typing import Any

import pytest
import trio
import trio.testing

from netsync.agent import Agent
from netsync.buffer import Pending
from netsync.intents import Answer
from netsync.logs import Log
from tests.unit.lone_agents import lone_settings


def lone_agent(tmp_path) -> Agent:
    """An agent that is its own quorum; its orchestrator is replaced by each test."""
    settings = lone_settings(tmp_path)
    return Agent(settings, Log("agent-1", io.StringIO()))


async def first_fails_then_repeat(agent: Agent, body: tuple[str, int, str]) -> tuple[Any, Any]:
    """The first request for `body`'s cid, held in its commit until the repeat waits behind it; each
    one's answer or the exception it ended in."""
    results: dict[str, Any] = {}
    repeat_waits = trio.Event()

    async def post(name: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            results[name] = await agent.submit(*body)
        except Exception as e:  # what guarded turns into a 500
            results[name] = e

    async with trio.open_nursery() as nursery:
        agent._nursery = nursery
        agent.holding = repeat_waits  # type: ignore[attr-defined]
        nursery.start_soon(post, "first")
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(post, "repeat")
        await trio.testing.wait_all_tasks_blocked()
        repeat_waits.set()
    return results["first"], results["repeat"]


def committed(cid: str, seq: int) -> tuple[int, str, int]:
    return 200, cid, seq


def summary(answer: Answer) -> tuple[int, str, int | None]:
    return answer.status, answer.body["cid"], answer.body.get("stream_seq")


def test_a_repeat_behind_a_first_request_that_failed_is_decided_again(tmp_path) -> None:
    agent = lone_agent(tmp_path)
    calls: list[Pending] = []

    async def commit(entry: Pending) -> int | None:
        calls.append(entry)
        if len(calls) == 1:
            await agent.holding.wait()  # type: ignore[attr-defined]
            raise RuntimeError("the decision frame could not be sent")
        return 42

    agent.commit = commit  # type: ignore[method-assign]
    first, repeat = trio.run(first_fails_then_repeat, agent, ("k", 5, "c1"))
    assert isinstance(first, RuntimeError)
    assert summary(repeat) == committed("c1", 42)
    assert agent.answers.get("c1")[1]["stream_seq"] == 42  # type: ignore[index]  # kept for later repeats
    assert [e.cid for e in calls] == ["c1", "c1"]


def test_a_repeat_behind_a_commit_whose_answer_could_not_be_kept_gets_that_commit(tmp_path) -> None:
    # The first committed (seq 7), then the disk refused its answer: no answer, a 500. The repeat
    # decides again; the orchestrator answers it with the seq the stream holds (Nats-Msg-Id).
    agent = lone_agent(tmp_path)
    put, refusals = agent.answers.put, []

    def full_disk_once(cid: str, status: int, body: dict) -> None:
        if not refusals:
            refusals.append(cid)
            raise OSError(errno.ENOSPC, "No space left on device")
        put(cid, status, body)

    async def commit(entry: Pending) -> int | None:
        await agent.holding.wait()  # type: ignore[attr-defined]
        return 7

    agent.answers.put = full_disk_once  # type: ignore[method-assign]
    agent.commit = commit  # type: ignore[method-assign]
    first, repeat = trio.run(first_fails_then_repeat, agent, ("k", 5, "c2"))
    assert isinstance(first, OSError)
    assert summary(repeat) == committed("c2", 7)


def test_a_repeat_with_another_value_behind_a_failed_first_is_aborted(tmp_path) -> None:
    # Decided again by the same rules: this agent already agreed to (k, 5) under c3.
    agent = lone_agent(tmp_path)

    async def commit(entry: Pending) -> int | None:
        await agent.holding.wait()  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    agent.commit = commit  # type: ignore[method-assign]

    async def both() -> tuple[Any, Any]:
        results: dict[str, Any] = {}

        async def post(name: str, value: int) -> None:
            try:
                results[name] = await agent.submit("k", value, "c3")
            except Exception as e:
                results[name] = e

        async with trio.open_nursery() as nursery:
            agent._nursery = nursery
            agent.holding = trio.Event()  # type: ignore[attr-defined]
            nursery.start_soon(post, "first", 5)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(post, "repeat", 6)
            await trio.testing.wait_all_tasks_blocked()
            agent.holding.set()  # type: ignore[attr-defined]
        return results["first"], results["repeat"]

    first, repeat = trio.run(both)
    assert isinstance(first, RuntimeError)
    assert (repeat.status, repeat.body["outcome"]) == (409, "aborted")
    assert "different proposal" in repeat.body["reason"]


@pytest.mark.parametrize("repeats", [1, 3])
def test_repeats_behind_a_first_that_answered_get_its_answer_without_deciding_again(
    tmp_path, repeats
) -> None:
    agent = lone_agent(tmp_path)
    calls: list[str] = []

    async def commit(entry: Pending) -> int | None:
        calls.append(entry.cid)
        await agent.holding.wait()  # type: ignore[attr-defined]
        return 9

    agent.commit = commit  # type: ignore[method-assign]

    async def all_of_them() -> list[Answer]:
        answers: list[Answer] = []

        async def post() -> None:
            answers.append(await agent.submit("k", 5, "c4"))

        async with trio.open_nursery() as nursery:
            agent._nursery = nursery
            agent.holding = trio.Event()  # type: ignore[attr-defined]
            for _ in range(1 + repeats):
                nursery.start_soon(post)
                await trio.testing.wait_all_tasks_blocked()
            agent.holding.set()  # type: ignore[attr-defined]
        return answers

    answers = trio.run(all_of_them)
    assert [summary(a) for a in answers] == [committed("c4", 9)] * (1 + repeats)
    assert calls == ["c4"]
