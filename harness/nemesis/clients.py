"""Faults a client commits: `repeat` posts again what an agent already answered, as a client
retrying after a lost answer would (docs/contract.md: a repeat gets its first answer, never a
second intent). The reposts go straight to the agent's HTTP API, beside the load."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from harness.load import ACCEPTED, REFUSED, Answered
from harness.scenario import RepeatFault

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls

CONCURRENCY = 8
EXAMPLES = 5  # changed answers named in the evidence
TIMEOUT_S = 5.0


def _outcome(r: httpx.Response) -> str:
    return ACCEPTED.get(r.status_code) or REFUSED.get(r.status_code) or f"HTTP {r.status_code}"


def _same(first: str, again: str) -> bool:
    # A pending-commit intent may have been committed since: the answer is its state now.
    return first == again or (first, again) == ("pending-commit", "committed")


@dataclass
class Repeat:
    url: str
    answered: list[Answered]
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None
    _changed: list[dict[str, str]] = field(default_factory=list)

    async def start(self) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        same = failed = 0

        async def repost(http: httpx.AsyncClient, a: Answered) -> None:
            nonlocal same, failed
            async with gate:
                try:
                    r = await http.post(self.url, json={"key": a.key, "value": a.value, "cid": a.cid})
                except httpx.HTTPError:
                    failed += 1
                    return
            again = _outcome(r)
            if _same(a.outcome, again):
                same += 1
            else:
                self._changed.append({"cid": a.cid, "first": a.outcome, "again": again})

        # Plain HTTP: verify=False skips loading the CA bundle, ~35 ms of blocked event loop.
        async with httpx.AsyncClient(timeout=TIMEOUT_S, verify=False) as http:
            await asyncio.gather(*(repost(http, a) for a in self.answered))
        self.evidence = {
            "reposted": len(self.answered),
            "same_answer": same,
            "no_answer": failed,
            "changed_answer": len(self._changed),
            "changed": sorted(self._changed, key=lambda c: c["cid"])[:EXAMPLES],
        }

    async def stop(self) -> None:
        return None  # what was posted stays posted


def repeat(ctl: Controls, fault: RepeatFault, fault_id: str) -> ActiveFault:
    answered = ctl.answered(fault.target)
    return Repeat(f"{ctl.sut.http_url(fault.target)}/intents", answered, {"node": fault.target})


NEMESES = {"repeat": repeat}
