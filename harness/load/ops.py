"""What the load sends and how an answer is written down, shared by both engines (asyncio and Locust):
the seeded plan of intents (which cid, agent, key and value goes out at which offset) and the history
records of one operation (Jepsen's invoke, then ok, fail or info; docs/run-format.md)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness import store
from harness.load.cids import Cids

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
    cids: str = "plain"  # harness.load.cids.STYLES

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
    kind: str = "plain"  # harness.load.cids.KINDS
    off_rule: str | None = None  # how the cid breaks the contract's rule, None when it follows it

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
    cids = Cids(plan.cids, cid_prefix, plan.seed)
    last_agent = ""
    for i in range(plan.total):
        agent = rng.choice(agents)
        key = f"k{rng.randrange(plan.keys)}"
        value = rng.randrange(-1000, 1000)
        cid = cids(i)
        if cid.kind == "pair-newline":  # X\n to the agent that was just sent X
            agent = last_agent
        last_agent = agent
        if i % n == k:
            yield Intent(i, i / plan.rate, cid.text, agent, key, value, cid.kind, cid.off_rule)


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
    fail (definitely not applied: refused, or a request the agent found invalid) or info (unknown).

    An answer that breaks docs/contract.md's shape is that operation's problem, not the run's: it is
    `info` (the agent may or may not have applied the intent), without the answer's fields, and carries
    `contract`: "<field>: <what was wrong>" (several joined by "; "), which the checkers report. Copied
    as it came, one `stream_seq: "12"` made the whole history unreadable to them."""
    base = {"process": process, "f": "intent", "cid": intent.cid, "agent": intent.agent}
    if status is None:
        # The client's own words, which may quote the peer's bytes: a lone surrogate would make the
        # history's line one its readers refuse.
        said = (error or "no answer")[:300].encode("utf-8", "backslashreplace").decode()
        return {**base, "type": "info", "error": said}
    shown = f"HTTP {status}: {payload.decode(errors='replace')[:200]}"
    breach = _rule_breach(intent, status)
    body: dict[str, Any] = {}
    if status in ACCEPTED or status in REFUSED:
        body, problems = _answer(status, payload, intent.cid)
        if problems:
            return {**base, "type": "info", "error": shown, "contract": "; ".join([*breach, *problems])}
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
            done["reason"] = body["reason"][:300]
    elif 400 <= status < 500:
        # Refused as malformed: definitely not applied. RUN-FORMAT's fail outcomes are aborted and rejected
        # only; the agent rejected it, and the reason says why.
        done = {"type": "fail", "outcome": "rejected", "reason": f"invalid: {shown}"[:300], "error": shown}
    elif status >= 500:
        done = {"type": "info", "error": shown}
    else:  # 1xx, 3xx, a 2xx other than 200 and 202: no answer of the contract
        done = {
            "type": "info",
            "error": shown,
            "contract": f"status: {status} is not an answer to POST /intents",
        }
    if breach:
        done["contract"] = "; ".join([*breach, *([done["contract"]] if "contract" in done else [])])
    return {**base, **done}


def _rule_breach(intent: Intent, status: int) -> list[str]:
    """How the answer to an edge cid broke docs/contract.md's cid rule: one off the rule that was taken
    (accepted or refused as an intent, rather than answered 400), one on it answered 400. The operation
    keeps its type, which says what the agent did with it."""
    if intent.kind == "plain":
        return []
    if intent.off_rule is not None and (status in ACCEPTED or status in REFUSED):
        cid = _shown(intent.cid)
        return [f"cid: {cid} has {intent.off_rule}, off the rule, yet HTTP {status} took it, not 400"]
    if intent.off_rule is None and status == 400:
        return [f"cid: {_shown(intent.cid)} ({intent.kind}) follows the rule, yet HTTP 400 refused it"]
    return []


def _answer(status: int, payload: bytes, cid: str) -> tuple[dict[str, Any], list[str]]:
    """The body of a 200, 202, 409 or 429 and what in it breaks the contract. Only what is there is
    judged: a field the contract lists may be absent (an agent's answer to a repeated cid carries no
    `quorum_ms`, and the status alone says what became of the intent), but a field that is there has
    the contract's type and sense. No body at all is an empty one."""
    if not payload.strip():
        return {}, []
    try:
        body = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as e:
        return {}, [f"body: not UTF-8 (byte {e.start})"]
    except RecursionError:
        return {}, ["body: JSON nested too deeply to read"]
    except ValueError as e:  # not JSON, or an integer of more digits than Python converts
        return {}, [f"body: not JSON ({str(e)[:80]})"]
    if not isinstance(body, dict):
        return {}, [f"body: {_kind(body)}, not a JSON object"]
    problems = []
    meant = ACCEPTED.get(status) or REFUSED[status]
    if "cid" in body and (why := _text_problem(body["cid"]) or _same(body["cid"], cid, "the cid sent")):
        problems.append(f"cid: {why}")
    if "outcome" in body and (
        why := _text_problem(body["outcome"]) or _same(body["outcome"], meant, f"what HTTP {status} means")
    ):
        problems.append(f"outcome: {why}")
    if status in ACCEPTED:
        if "stream_seq" in body and (why := _seq_problem(body["stream_seq"])):
            problems.append(f"stream_seq: {why}")
        if "quorum_ms" in body and (why := _ms_problem(body["quorum_ms"])):
            problems.append(f"quorum_ms: {why}")
    elif "reason" in body and (why := _text_problem(body["reason"])):
        problems.append(f"reason: {why}")
    return body, problems


def _kind(value: Any) -> str:
    """A JSON value's kind, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"a string ({_shown(value)})"
    return "an array" if isinstance(value, list) else "an object"


def _shown(value: Any) -> str:
    """A value as the `contract` field quotes it: ASCII (a lone surrogate cannot reach the history, whose
    readers refuse it), and short."""
    if isinstance(value, int) and abs(value) >= 10**30:  # str() refuses past 4,300 digits
        return f"an integer of about {value.bit_length() * 0.30103:.0f} digits"
    text = ascii(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _text_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{_kind(value)}, not a string"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{_shown(value)} holds a lone surrogate, not Unicode text"
    return None


def _same(value: str, expected: str, what: str) -> str | None:
    return None if value == expected else f"{_shown(value)}, not {what} ({_shown(expected)})"


def _seq_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{_kind(value)}, not an integer"
    if not store.valid_seq(value):
        return f"{_shown(value)}, not a stream sequence (1 to 2^63-1)"
    return None


def _ms_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{_kind(value)}, not a number"
    try:
        ms = float(value)
    except OverflowError:
        ms = math.inf
    if not (math.isfinite(ms) and ms >= 0):
        return f"{_shown(value)}, not a finite number of milliseconds, 0 or more"
    return None


def answered(intent: Intent, done: dict[str, Any]) -> Answered | None:
    """What the `repeat` fault may post again: an answer known for certain (not info)."""
    if done["type"] == "info":
        return None
    return Answered(intent.cid, intent.key, intent.value, done["outcome"])
