"""Load: intents against the agents' HTTP API at a seeded, open-loop rate, each recorded
in the history as Jepsen's invoke, then ok (accepted), fail (definitely not applied)
or info (unknown: timeout or reset)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx

from harness.history import History
from harness.topology.system import System

ACCEPTED = {200: "committed", 202: "pending-commit"}
REFUSED = {409: "aborted", 429: "rejected"}


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


class Load:
    def __init__(self, sut: System, history: History, plan: LoadPlan, cid_prefix: str) -> None:
        self.sut = sut
        self.history = history
        self.plan = plan
        self.cid_prefix = cid_prefix
        self.rng = random.Random(plan.seed)
        self.urls = {a: f"{sut.http_url(a)}/intents" for a in sut.cfg.agent_names()}
        self.done = 0
        self._answered: dict[str, list[Answered]] = {a: [] for a in self.urls}

    def answered(self, agent: str) -> list[Answered]:
        """What `agent` has answered so far, in the order the answers came."""
        return list(self._answered.get(agent, ()))

    async def run(self) -> None:
        """Issue `total` intents at `rate`; return when every one has completed."""
        free: asyncio.Queue[str] = asyncio.Queue()
        for i in range(self.plan.clients):
            free.put_nowait(f"c{i}")
        limits = httpx.Limits(
            max_connections=self.plan.clients * 2, max_keepalive_connections=self.plan.clients
        )
        async with httpx.AsyncClient(limits=limits, timeout=self.plan.timeout) as http:
            async with asyncio.TaskGroup() as tg:
                start = self.history.now()
                agents = list(self.urls)
                for i in range(self.plan.total):
                    due = start + i / self.plan.rate
                    delay = due - self.history.now()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    process = await free.get()  # a client does one operation at a time
                    agent = self.rng.choice(agents)
                    op = {
                        "cid": f"{self.cid_prefix}-{i:06d}",
                        "agent": agent,
                        "key": f"k{self.rng.randrange(self.plan.keys)}",
                        "value": self.rng.randrange(-1000, 1000),
                    }
                    tg.create_task(self._intent(http, process, op, free))

    async def _intent(
        self, http: httpx.AsyncClient, process: str, op: dict[str, Any], free: asyncio.Queue
    ) -> None:
        base = {"process": process, "f": "intent", "cid": op["cid"], "agent": op["agent"]}
        self.history.record({**base, "type": "invoke", "key": op["key"], "value": op["value"]})
        try:
            r = await http.post(self.urls[op["agent"]], json={k: op[k] for k in ("key", "value", "cid")})
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            if r.status_code in ACCEPTED:
                done = {"type": "ok", "outcome": ACCEPTED[r.status_code]}
                if "stream_seq" in body:
                    done["stream_seq"] = body["stream_seq"]
                if "quorum_ms" in body:
                    done["quorum_ms"] = body["quorum_ms"]
            elif r.status_code in REFUSED:
                done = {"type": "fail", "outcome": REFUSED[r.status_code]}
                if body.get("reason"):
                    done["reason"] = str(body["reason"])[:300]
            elif 400 <= r.status_code < 500:
                done = {
                    "type": "fail",
                    "outcome": "invalid",
                    "error": f"HTTP {r.status_code}: {r.text[:200]}",
                }
            else:
                done = {"type": "info", "error": f"HTTP {r.status_code}: {r.text[:200]}"}
        except (httpx.HTTPError, ValueError) as e:
            done = {"type": "info", "error": f"{type(e).__name__}: {e}"[:300]}
        self.history.record({**base, **done})
        if done["type"] != "info":
            self._answered[op["agent"]].append(Answered(op["cid"], op["key"], op["value"], done["outcome"]))
        self.done += 1
        free.put_nowait(process)
