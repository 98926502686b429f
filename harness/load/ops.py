"""What the load sends and how an answer is written down, shared by both engines (asyncio and Locust):
the seeded plan of intents (which cid, agent, key and value goes out at which offset) and the history
records of one operation (Jepsen's invoke, then ok, fail or info; docs/run-format.md)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

ACCEPTED = {200: "committed", 202: "pending-commit"}
REFUSED = {409: "aborted", 429: "rejected"}
ANSWERS_KEPT = 2000  # per agent, for the `repeat` fault: the most recent answers, not all of a soak's


@dataclass(frozen=True)
class Answered:
    """An intent an agent answered for certain (ok or fail), as the load sent it."""

    cid: str
    key: str
    value: int
    outcome: str


@dataclass(frozen=True)
class LoadPlan:
    rate: float
    duration: float
    keys: int
    clients: int
    timeout: float
    seed: int

    @property
    def total(self) -> int:
        return max(1, int(self.rate * self.duration))


@dataclass(frozen=True)
class Intent:
    """The plan's intent number `index`: due `at` seconds after the load's start (t = 0)."""

    index: int
    at: float
    cid: str
    agent: str
    key: str
    value: int

    def body(self) -> bytes:
        return json.dumps({"key": self.key, "value": self.value, "cid": self.cid}).encode()


def intents(
    plan: LoadPlan, agents: Sequence[str], cid_prefix: str, share: tuple[int, int] = (0, 1)
) -> Iterator[Intent]:
    """The seeded plan, lazily: intent i is due at i/rate, its agent, key and value drawn from one
    Random(seed) in index order, so a seed gives the same intents at the same offsets whichever engine
    sends them. `share` (k, n) keeps the intents whose index is k modulo n: the part of one of n load
    processes, every draw still made so each process sees the same sequence."""
    rng = random.Random(plan.seed)
    k, n = share
    for i in range(plan.total):
        agent = rng.choice(agents)
        key = f"k{rng.randrange(plan.keys)}"
        value = rng.randrange(-1000, 1000)
        if i % n == k:
            yield Intent(i, i / plan.rate, f"{cid_prefix}-{i:06d}", agent, key, value)


def connections(clients: int, agents: Sequence[str]) -> dict[str, list[str]]:
    """The load's clients (Jepsen's processes, each one operation at a time) spread over the agents, one
    keep-alive connection each, at least one per agent: {agent: [process, ...]}."""
    out: dict[str, list[str]] = {a: [] for a in agents}
    for i in range(max(clients, len(agents))):
        out[agents[i % len(agents)]].append(f"c{i}")
    return out


def invoke(process: str, intent: Intent) -> dict[str, Any]:
    """The invoke record (without `t`, which the history stamps)."""
    return {
        "process": process,
        "f": "intent",
        "cid": intent.cid,
        "agent": intent.agent,
        "type": "invoke",
        "key": intent.key,
        "value": intent.value,
    }


def completion(
    process: str, intent: Intent, status: int | None, payload: bytes, error: str | None
) -> dict[str, Any]:
    """The completion record (without `t`) of an HTTP answer, or of `error` when none came: ok (accepted),
    fail (definitely not applied: refused, or a request the agent found invalid) or info (unknown)."""
    base = {"process": process, "f": "intent", "cid": intent.cid, "agent": intent.agent}
    if status is None:
        return {**base, "type": "info", "error": (error or "no answer")[:300]}
    try:  # the status decides; the body only adds what it carries
        body = json.loads(payload) if payload else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    done: dict[str, Any]
    if status in ACCEPTED:
        done = {"type": "ok", "outcome": ACCEPTED[status]}
        if "stream_seq" in body:
            done["stream_seq"] = body["stream_seq"]
        if "quorum_ms" in body:
            done["quorum_ms"] = body["quorum_ms"]
    elif status in REFUSED:
        done = {"type": "fail", "outcome": REFUSED[status]}
        if body.get("reason"):
            done["reason"] = str(body["reason"])[:300]
    elif 400 <= status < 500:
        text = payload.decode(errors="replace")[:200]
        done = {"type": "fail", "outcome": "invalid", "error": f"HTTP {status}: {text}"}
    else:
        done = {"type": "info", "error": f"HTTP {status}: {payload.decode(errors='replace')[:200]}"}
    return {**base, **done}


def answered(intent: Intent, done: dict[str, Any]) -> Answered | None:
    """What the `repeat` fault may post again: an answer known for certain (not info)."""
    if done["type"] == "info":
        return None
    return Answered(intent.cid, intent.key, intent.value, done["outcome"])
