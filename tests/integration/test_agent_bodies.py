"""Generated bodies against a real agent process (issue 17): one agent (its own quorum), the
orchestrator, NATS, the projector and SurrealDB, all plain processes. Whatever the body, the
answer is never a 5xx; a refused body is a 400 (or 413) naming the field; a repeated cid gets its
first answer again; and afterwards the reconciliation checker, run on the history of the answers
and on the stream and store as the collector reads them, finds every 2xx intent exactly once in
both, with its key and value, and nothing of the others."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import store
from harness.checkers.reconciliation import CHECKER as RECONCILIATION
from harness.checkers.run import Run
from harness.collect import write_store, write_stream
from harness.waiting import await_until
from tests.integration.netsync_procs import Cluster, NatsServer, SurrealServer

EXAMPLES = 500
AGENT = "agent-1"
ANSWERS = {200: "committed", 202: "pending-commit", 409: "aborted", 429: "rejected"}
REFUSED = {400, 413}

# -- what a client might send ------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udfff", "k\udc00", "\udbff\udfff"])  # lone, and a reversed pair
TEXT = st.text(max_size=140) | SURROGATES | st.sampled_from(["", "k", "ключ", "a\nb", "\x00", "k" * 129])
CIDS = (
    st.none()
    | st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
    | st.sampled_from(["abc\n", "abc\r\n", "x" * 65, "a b", "", "é"])
    | TEXT
)
JSON_SCALARS = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8)
VALUES = (
    st.integers(-1_200_000, 1_200_000)
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 10**4000])
    | JSON_SCALARS
    | st.lists(st.integers(), max_size=3)
)


GOOD = {
    "key": st.text(min_size=1, max_size=128)
    | st.sampled_from(["k", "ключ", "鍵", "a\x00b", " ", "🔑" * 128]),
    "value": st.integers(-1_000_000, 1_000_000),
    "cid": st.none()
    | st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
    | st.sampled_from(["c1", "c2"]),
}
ANY = {"key": TEXT | JSON_SCALARS, "value": VALUES, "cid": CIDS}


@st.composite
def intent_bodies(draw: st.DrawFn) -> bytes:
    """An intent as JSON: well-formed half of the time, else with some fields drawn from anything
    (a field may be left out, and an unknown one added)."""
    spoiled = set() if draw(st.booleans()) else draw(st.sets(st.sampled_from(sorted(ANY)), min_size=1))
    obj: dict[str, Any] = {}
    for name in ("key", "value", "cid"):
        if name in spoiled and not draw(st.integers(0, 4)):
            continue  # left out
        value = draw((ANY if name in spoiled else GOOD)[name])
        if value is not None or name != "cid" or draw(st.booleans()):
            obj[name] = value
    if not draw(st.integers(0, 19)):
        obj[draw(st.text(max_size=6))] = draw(JSON_SCALARS)
    return json.dumps(obj).encode()  # ensure_ascii: a lone surrogate goes out as \udXXX


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 70_000))
    digits = draw(st.integers(4_000, 6_000))
    return draw(
        st.sampled_from(
            [
                b"[" * depth,
                b'{"key": "k", "value": ' + b"[" * depth,
                b'{"key": "k", "value": ' + b"9" * digits + b"}",
                b'{"key": "k", "value": 1, "cid": "' + b"x" * 70_000 + b'"}',  # over 64 KiB
            ]
        )
    )


BODIES = intent_bodies() | intent_bodies() | hostile_bodies() | st.binary(max_size=200)


# -- the model of what was answered ----------------------------------------------------------------


def intent_of(body: bytes) -> tuple[Any, Any]:
    obj = json.loads(body)
    return obj["key"], obj["value"]


class Answers:
    """The first answer per cid, as history lines: every cid the agent answered is invoked once."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[int, dict[str, Any]]] = {}
        self.lines: list[dict[str, Any]] = []
        self.refused = 0

    def record(self, body: bytes, status: int, answer: dict[str, Any], t0: float, t1: float) -> None:
        assert status < 500, (status, answer, body[:200])
        if status in REFUSED:
            assert set(answer) == {"error", "field"} and answer["error"], answer
            self.refused += 1
            return
        assert status in ANSWERS and answer["outcome"] == ANSWERS[status], (status, answer)
        cid = answer["cid"]
        if cid in self.first:  # a repeat: the first answer again, or its state now (202 -> 200)
            first_status, first = self.first[cid]
            assert answer["outcome"] == first["outcome"] or (first_status, status) == (202, 200), (
                first,
                answer,
            )
            return
        self.first[cid] = (status, answer)
        common = {"process": "c0", "f": "intent", "cid": cid, "agent": AGENT}
        # The key and value of what was accepted; a refused one's value may have 4,000 digits.
        what = dict(zip(("key", "value"), intent_of(body), strict=True)) if status < 300 else {}
        self.lines.append({"t": t0, "type": "invoke", **common, **what})
        done = {k: v for k, v in answer.items() if k in ("outcome", "stream_seq", "quorum_ms")}
        self.lines.append({"t": t1, "type": "ok" if status < 300 else "fail", **common, **done})

    def accepted(self) -> int:
        return sum(1 for status, _ in self.first.values() if status < 300)


# -- the test ------------------------------------------------------------------------------------


def test_any_body_gets_no_5xx_and_every_accepted_intent_reconciles(
    tmp_path: Path, nats_server: NatsServer, surreal_server: SurrealServer
) -> None:
    answers = Answers()
    with Cluster(tmp_path / "cluster", nats_server, agents=1, surreal=surreal_server) as cluster:
        url = f"{cluster.url(AGENT)}/intents"
        start = time.monotonic()
        with httpx.Client(timeout=30) as http:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(body=BODIES)
            def post(body: bytes) -> None:
                t0 = time.monotonic() - start
                r = http.post(url, content=body, headers={"content-type": "application/json"})
                answers.record(body, r.status_code, r.json(), t0, time.monotonic() - start)

            post()
        assert answers.accepted() > 10 and answers.refused > 10, (answers.accepted(), answers.refused)
        run = tmp_path / "run"
        run.mkdir()
        asyncio.run(_collect(cluster, nats_server, surreal_server, run, answers.accepted()))
        dead = [line for line in cluster.projector.lines() if line["msg"] == "dead-lettered"]
        handler_failures = [line for line in cluster.agents[AGENT].lines() if line["msg"] == "handler failed"]
    store.write_json(run / store.SCENARIO, {"name": "agent-bodies", "seed": 0})
    store.write_jsonl(run / store.HISTORY, sorted(answers.lines, key=lambda op: op["t"]))
    result = RECONCILIATION.check(Run(run))
    assert [a.to_json() for a in result.anomalies] == []
    assert result.figures["accepted"] == answers.accepted()
    assert (dead, handler_failures) == ([], [])
    print(
        f"{EXAMPLES} examples: {len(answers.first)} intents answered, {answers.accepted()} accepted, "
        f"{answers.refused} bodies refused (400/413)"
    )


async def _collect(
    cluster: Cluster, nats: NatsServer, surreal: SurrealServer, run: Path, accepted: int
) -> None:
    """Once every accepted intent is projected: the stream and the store, as the collector reads them."""

    async def projected() -> bool:
        async with httpx.AsyncClient(timeout=2) as http:
            health = (await http.get(f"{cluster.url(AGENT)}/healthz")).json()
        rows = await write_store(surreal.ws_url, run / store.STORE)
        return health["buffer_depth"] == 0 and rows >= accepted

    await await_until(projected, f"{accepted} rows in the store", timeout=120, interval=0.5)
    await write_stream(nats.url, run / store.STREAM)
    await write_store(surreal.ws_url, run / store.STORE)


def reply_of(s: socket.socket) -> tuple[bytes, dict[str, Any]]:
    """The status line and JSON body of one HTTP answer read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096) or b"\0"  # a closed socket fails the JSON below, not a loop
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += s.recv(4096) or b"\0"
    return head.split(b"\r\n")[0], json.loads(body)


def test_a_slow_body_is_answered_408_and_an_announced_large_one_413(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    with Cluster(tmp_path / "cluster", nats_server, agents=1) as cluster:
        port = cluster.http_port[AGENT]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b'POST /intents HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"ke\r\n')
            t0 = time.monotonic()
            status, answer = reply_of(s)
            waited = time.monotonic() - t0
        assert status.startswith(b"HTTP/1.1 408"), (status, answer)
        assert 8 < waited < 25, waited
        assert answer["field"] == "body" and "10 s" in answer["error"], answer
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /intents HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n")
            status, answer = reply_of(s)  # at once: not a byte of the body was sent
        assert status.startswith(b"HTTP/1.1 413"), (status, answer)
        assert answer["field"] == "body" and "65536" in answer["error"], answer
