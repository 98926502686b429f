"""The agent's replay: what the pending-commit buffer holds goes to the orchestrator again, head
first, until it is committed (docs/contract.md, "Pending-commit buffer"). Split from netsync/agent.py,
which calls these with itself."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from netsync.buffer import BufferFull, Pending

if TYPE_CHECKING:
    from netsync.agent import Agent

MAX_REPLAY_DELAY = 2.0
JOURNAL_LATE_S = 2.0  # buggify journal-late: how long a 202 waits for the journal
JOURNAL_AFTER_ANSWER_S = 0.005  # buggify journal-after-answer: the 202's send goes first


async def journal_late_loop(agent: Agent) -> None:
    """buggify journal-late: each decision answered 202 reaches the journal JOURNAL_LATE_S after
    its answer, so a crash loses every one answered in its last seconds (not a random slice)."""
    while True:
        due = agent.unjournaled[0][0] if agent.unjournaled else time.monotonic() + 0.1
        await trio.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        ready = [entry for at, entry in agent.unjournaled if at <= now]
        if ready:
            agent.unjournaled = agent.unjournaled[len(ready) :]
            await trio.to_thread.run_sync(agent.buffer.append_many, ready)
            agent._refresh_gauges()
            agent._wake.set()


async def journal_after_answer(agent: Agent, entry: Pending) -> None:
    """buggify journal-after-answer: `entry` was answered 202 and reaches the journal (fsynced) only now,
    once the answer is on its way: a crash before the fsync returns loses an intent answered 202."""
    await trio.sleep(JOURNAL_AFTER_ANSWER_S)
    try:
        await trio.to_thread.run_sync(agent.buffer.append, entry)
    except (OSError, BufferFull) as e:
        agent.log.error("journal write failed after the answer", cid=entry.cid, error=str(e))
    finally:
        agent.unjournaled = [(at, e) for at, e in agent.unjournaled if e is not entry]
    agent._refresh_gauges()
    agent._wake.set()


async def replay_loop(agent: Agent) -> None:
    """Never ends on a failed write to the journal or the answers file (a full or failing disk): that
    entry is tried again after the back-off, as when the orchestrator is away. An agent whose replay
    died kept answering 202 and never drained."""
    delay = agent.s.replay_interval

    async def back_off() -> None:
        nonlocal delay
        agent.metrics.replay_failures.inc()
        await trio.sleep(delay)  # the orchestrator, NATS or the journal's disk is failing
        delay = min(delay * 2, MAX_REPLAY_DELAY)

    while True:
        head = agent.buffer.head()
        if head is None:
            await agent._wake.wait()
            agent._wake = trio.Event()
            continue
        try:
            entry = await trio.to_thread.run_sync(agent.buffer.bump_attempt, head.cid)
        except OSError as e:  # not sent: an attempt must be journaled before it goes out
            agent.log.error("journal write failed", cid=head.cid, error=str(e))
            await back_off()
            continue
        seq = await agent.commit(entry)
        if seq is None:
            await back_off()
            continue
        try:
            await trio.to_thread.run_sync(agent.buffer.complete, entry.cid, seq)
        except OSError as e:
            agent.log.error("journal write failed", cid=entry.cid, error=str(e))
            if agent.buffer.contains(entry.cid):  # still pending: the next replay is answered this seq
                await back_off()
                continue
        agent.metrics.replays.inc()
        agent._refresh_gauges()
        delay = agent.s.replay_interval
        body = {"cid": entry.cid, "outcome": "committed", "stream_seq": seq}
        earlier = agent.answers.get(entry.cid)
        if earlier is not None and "quorum_ms" in earlier[1]:
            body["quorum_ms"] = earlier[1]["quorum_ms"]
        try:
            agent.answers.put(entry.cid, 200, body)
        except OSError as e:  # committed all the same; a repeat gets the 202 it got before
            agent.log.error("answer not kept", cid=entry.cid, error=str(e))
        agent.log.info("replayed", cid=entry.cid, stream_seq=seq, attempt=entry.attempt)
