"""The asyncio engine (the default): the seeded plan sent open loop from the harness's own event loop,
each intent queued at its due time to its agent's IntentSender, each operation recorded in the history
as Jepsen's invoke (when it goes out), then ok (accepted), fail (definitely not applied) or info
(unknown: timeout or reset)."""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial

from harness.history import History
from harness.load.ops import (
    ANSWERS_KEPT,
    Answered,
    Intent,
    LoadPlan,
    answered,
    completion,
    connections,
    intents,
    invoke,
)
from harness.load.sender import IntentSender, Reply


class Load:
    engine = "asyncio"

    def __init__(self, urls: dict[str, str], history: History, plan: LoadPlan, cid_prefix: str) -> None:
        self.urls = dict(urls)
        self.history = history
        self.plan = plan
        self.cid_prefix = cid_prefix
        self.done = 0
        # Bounded: a soak answers millions; `repeat` reposts the most recent ones (docs/scenarios.md).
        self._answered: dict[str, deque[Answered]] = {a: deque(maxlen=ANSWERS_KEPT) for a in self.urls}

    @property
    def counts(self) -> dict[str, int]:
        """Operations so far by `type:outcome` (the history counts them as it writes them)."""
        return self.history.counts

    def answered(self, agent: str) -> list[Answered]:
        """The most recent answers `agent` gave for certain (at most ANSWERS_KEPT), oldest first."""
        return list(self._answered.get(agent, ()))

    async def prepare(self) -> None:
        return None  # nothing to start before t = 0

    async def run(self) -> None:
        """Queue every intent of the plan at its due time (t = intent.at); return when each has its answer
        or gave up (the plan's timeout)."""
        agents = list(self.urls)
        senders = {
            a: IntentSender(self.urls[a], processes, self.plan.timeout)
            for a, processes in connections(self.plan.clients, agents).items()
        }
        for sender in senders.values():
            sender.start()
        try:
            for intent in intents(self.plan, agents, self.cid_prefix):
                delay = intent.at - self.history.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                senders[intent.agent].submit(
                    intent.body(), partial(self._sent, intent), partial(self._replied, intent)
                )
            for sender in senders.values():
                await sender.join()
        finally:
            for sender in senders.values():
                await sender.stop()

    def finish(self, say: object = None) -> None:
        return None  # the history was written in place

    def pids(self) -> dict[str, int]:
        return {}  # it runs in the harness's own process, sampled as `harness`

    def _sent(self, intent: Intent, process: str) -> None:
        self.history.record(invoke(process, intent))

    def _replied(self, intent: Intent, process: str, reply: Reply) -> None:
        done = completion(process, intent, reply.status, reply.payload, reply.error)
        self.history.record(done)
        if (a := answered(intent, done)) is not None:
            self._answered[intent.agent].append(a)
        self.done += 1
