"""Faults a client commits: `repeat` posts again what an agent already answered, as a client
retrying after a lost answer would (docs/contract.md: a repeat gets its first answer, never a
second intent). The reposts go straight to the agent's HTTP API, beside the load."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.http1 import ERRORS, Pool
from harness.load import ACCEPTED, REFUSED, Answered
from harness.scenario import RepeatFault

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls

CONCURRENCY = 8
EXAMPLES = 5  # changed answers named in the evidence
TIMEOUT_S = 5.0


def _outcome(status: int) -> str:
    return ACCEPTED.get(status) or REFUSED.get(status) or f"HTTP {status}"


def _same(first: str, again: str) -> bool:
    # A pending-commit intent may have been committed since: the answer is its state now.
    return first == again or (first, again) == ("pending-commit", "committed")


@dataclass
class Repeat:
    """The reposts start at the fault's start, which returns once the first is sent whole to the agent's
    connection (the fault has taken effect: its `t`; it was stamped at the first answer before, which
    under a planted bug that makes a repeat a new intent waited for that intent's quorum and commit, 76
    and 78 ms); the rest go on, CONCURRENCY at a time, and the stop waits for them all. The start line's
    evidence says how many were due, the stop line's what they were answered."""

    url: str  # the agent's base URL
    answered: list[Answered]
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None
    stop_evidence: dict[str, Any] | None = None
    _task: asyncio.Task[None] | None = None
    _changed: list[dict[str, str]] = field(default_factory=list)
    _same: int = 0
    _failed: int = 0

    async def start(self) -> None:
        first = asyncio.Event()
        self._task = asyncio.create_task(self._repost_all(first))
        self.evidence = {"reposting": len(self.answered)}
        # The task sets `first` once its first repost is sent, or ends (nothing to repost, or it failed).
        waiter = asyncio.create_task(first.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # a failure of the reposting itself fails the start

    async def _repost_all(self, first: asyncio.Event) -> None:
        async def repost(http: Pool, a: Answered) -> None:
            try:  # the pool sends CONCURRENCY at a time
                body = json.dumps({"key": a.key, "value": a.value, "cid": a.cid}).encode()
                status, _ = await http.request("POST", "/intents", body, sent=first.set)
            except ERRORS:
                self._failed += 1
                return
            finally:
                first.set()
            again = _outcome(status)
            if _same(a.outcome, again):
                self._same += 1
            else:
                self._changed.append({"cid": a.cid, "first": a.outcome, "again": again})

        http = Pool(self.url, size=CONCURRENCY, timeout=TIMEOUT_S)  # harness.http1: cheap on the loop
        try:
            await asyncio.gather(*(repost(http, a) for a in self.answered))
        finally:
            await http.aclose()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return  # what was posted stays posted; a second stop has nothing to wait for
        try:
            await task
        finally:
            self.stop_evidence = {
                "reposted": self._same + len(self._changed) + self._failed,
                "same_answer": self._same,
                "no_answer": self._failed,
                "changed_answer": len(self._changed),
                "changed": sorted(self._changed, key=lambda c: c["cid"])[:EXAMPLES],
            }


def repeat(ctl: Controls, fault: RepeatFault, fault_id: str) -> ActiveFault:
    answered = ctl.answered(fault.target)
    return Repeat(ctl.sut.http_url(fault.target), answered, {"node": fault.target})


NEMESES = {"repeat": repeat}
