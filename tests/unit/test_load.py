"""The load (harness/load/): the seeded plan, the history records of an answer, the asyncio engine against
a stand-in agent on 127.0.0.1, and the merge of history shards."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from harness.history import History
from harness.load import ANSWERS_KEPT, Answered, Load, LoadPlan, LocustLoad, intents
from harness.load.ops import Intent, completion, connections
from harness.load.sender import Reply
from harness.load.shards import merge_shards, recent_answers
from tests.unit.test_http1 import read_request

AGENTS = ["agent-1", "agent-2", "agent-3"]


def plan(seed: int = 7, rate: float = 50, duration: float = 4) -> LoadPlan:
    return LoadPlan(rate=rate, duration=duration, keys=16, clients=8, timeout=1.0, seed=seed)


# The seeded plan


def test_the_same_seed_sends_the_same_intents_at_the_same_offsets() -> None:
    first = list(intents(plan(7), AGENTS, "run"))
    again = list(intents(plan(7), AGENTS, "run"))
    assert first == again
    assert len(first) == 200 and [i.at for i in first[:3]] == [0.0, 0.02, 0.04]
    assert [i.cid for i in first[:2]] == ["run-000000", "run-000001"]
    other = list(intents(plan(8), AGENTS, "run"))
    assert [(i.agent, i.key, i.value) for i in other] != [(i.agent, i.key, i.value) for i in first]
    assert {i.agent for i in first} == set(AGENTS)


def test_the_shares_of_n_processes_make_up_the_plan_exactly() -> None:
    whole = list(intents(plan(3), AGENTS, "run"))
    shares = [list(intents(plan(3), AGENTS, "run", share=(k, 3))) for k in range(3)]
    assert sorted((i for share in shares for i in share), key=lambda i: i.index) == whole
    assert all(i.index % 3 == k for k, share in enumerate(shares) for i in share)


def test_clients_are_spread_over_the_agents_at_least_one_each() -> None:
    assert connections(8, AGENTS) == {
        "agent-1": ["c0", "c3", "c6"],
        "agent-2": ["c1", "c4", "c7"],
        "agent-3": ["c2", "c5"],
    }
    assert connections(1, AGENTS) == {"agent-1": ["c0"], "agent-2": ["c1"], "agent-3": ["c2"]}


# The records of an answer

INTENT = Intent(0, 0.0, "run-000000", "agent-2", "k3", 5)


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (
            200,
            b'{"stream_seq": 9, "quorum_ms": 2.5}',
            {"type": "ok", "outcome": "committed", "stream_seq": 9},
        ),
        (202, b"{}", {"type": "ok", "outcome": "pending-commit"}),
        (409, b'{"reason": "no quorum"}', {"type": "fail", "outcome": "aborted", "reason": "no quorum"}),
        (429, b"", {"type": "fail", "outcome": "rejected"}),
        (
            400,
            b"bad cid",
            {
                "type": "fail",
                "outcome": "rejected",
                "reason": "invalid: HTTP 400: bad cid",
                "error": "HTTP 400: bad cid",
            },
        ),
        (503, b"down", {"type": "info", "error": "HTTP 503: down"}),
        (None, b"", {"type": "info", "error": "TimeoutError: no answer"}),
    ],
)
def test_an_answer_becomes_ok_fail_or_info(status: int | None, payload: bytes, expected: dict) -> None:
    done = completion("c1", INTENT, status, payload, "TimeoutError: no answer" if status is None else None)
    assert done.items() >= {"process": "c1", "f": "intent", "cid": "run-000000", "agent": "agent-2"}.items()
    assert done.items() >= expected.items()


# The asyncio engine, against a stand-in agent


class Agent:
    """A stand-in for an agent's POST /intents on 127.0.0.1: answers 200, or 409 for odd values; closes
    a connection after `close_after` requests on it."""

    def __init__(self, close_after: int = 0) -> None:
        self.close_after = close_after
        self.bodies: list[dict] = []
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                body = json.loads((await read_request(reader)).split(b"\r\n\r\n", 1)[1])
                self.bodies.append(body)
                served += 1
                closing = self.close_after and served >= self.close_after
                status = b"409 Conflict" if body["value"] % 2 else b"200 OK"
                out = json.dumps(
                    {"cid": body["cid"], "stream_seq": len(self.bodies), "reason": "odd"}
                ).encode()
                writer.write(
                    b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%b\r\n%b"
                    % (status, len(out), b"connection: close\r\n" if closing else b"", out)
                )
                await writer.drain()
                if closing:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def run_load(agent: Agent, history_path: Path, load_plan: LoadPlan) -> Load:
    server = await asyncio.start_server(agent.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    history = History(history_path)
    load = Load({"agent-1": f"http://127.0.0.1:{port}"}, history, load_plan, "run")
    history.t0 = time.monotonic()
    async with server:
        await load.run()
    history.close()
    return load


async def test_the_asyncio_engine_records_invoke_then_its_answer_for_every_intent(tmp_path: Path) -> None:
    agent = Agent(close_after=7)  # the server closes now and then: the next request dials afresh
    load = await run_load(agent, tmp_path / "history.jsonl", plan(rate=200, duration=0.5))
    ops = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    invokes = [op for op in ops if op["type"] == "invoke"]
    done = {op["cid"]: op for op in ops if op["type"] != "invoke"}
    assert len(invokes) == len(done) == 100 == load.done
    assert [op["t"] for op in ops] == sorted(op["t"] for op in ops)
    for op in invokes:
        assert list(op) == ["t", "process", "f", "cid", "agent", "type", "key", "value"]
        answer = done[op["cid"]]
        assert answer["t"] >= op["t"] and answer["process"] == op["process"]
        assert answer["type"] == ("fail" if op["value"] % 2 else "ok"), answer
    assert {op["process"] for op in invokes} <= {f"c{i}" for i in range(8)}
    assert [b["cid"] for b in agent.bodies] == sorted(b["cid"] for b in agent.bodies) or len(
        agent.bodies
    ) == 100
    assert agent.connections > 1
    answered = load.answered("agent-1")
    assert len(answered) == 100 and answered[0].cid == "run-000000"


def test_answers_kept_for_repeat_are_the_most_recent_2000_per_agent(tmp_path: Path) -> None:
    load = Load({"agent-1": "http://127.0.0.1:1"}, History(tmp_path / "h.jsonl"), plan(), "run")
    for i in range(ANSWERS_KEPT + 500):
        intent = Intent(i, 0.0, f"run-{i:06d}", "agent-1", "k1", i)
        load._replied(intent, "c0", Reply(200, b"{}", None, 0.0))
    kept = load.answered("agent-1")
    assert ANSWERS_KEPT == 2000 and len(kept) == 2000
    assert kept[0].cid == "run-000500" and kept[-1].cid == f"run-{ANSWERS_KEPT + 499:06d}"


# Merging history shards


def shard(path: Path, *ops: dict, tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(json.dumps(op).encode() + b"\n" for op in ops) + tail)
    return path


def test_shards_merge_in_time_order_ties_in_the_order_the_shards_are_given(tmp_path: Path) -> None:
    harness = shard(
        tmp_path / "harness.jsonl", {"t": 1.0, "process": "nemesis"}, {"t": 3.0, "process": "nemesis"}
    )
    w0 = shard(
        tmp_path / "w0.jsonl",
        {"t": 0.5, "process": "w0"},
        {"t": 1.0, "process": "w0"},
        {"t": 4.0, "process": "w0"},
    )
    w1 = shard(tmp_path / "w1.jsonl", {"t": 1.0, "process": "w1"}, {"t": 2.0, "process": "w1"})
    merged = merge_shards([harness, w0, w1, tmp_path / "absent.jsonl"], tmp_path / "history.jsonl")
    ops = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [(op["t"], op["process"]) for op in ops] == [
        (0.5, "w0"),
        (1.0, "nemesis"),  # a tie: the harness's shard first, then the load's in their order
        (1.0, "w0"),
        (1.0, "w1"),
        (2.0, "w1"),
        (3.0, "nemesis"),
        (4.0, "w0"),
    ]
    assert merged.lines == 7 and merged.problems == []
    assert merged.per_shard == {"harness.jsonl": 2, "w0.jsonl": 3, "w1.jsonl": 2, "absent.jsonl": 0}


def test_a_torn_last_line_ends_its_shard_keeping_everything_before_it(tmp_path: Path) -> None:
    ok = {"t": 1.5, "process": "w0", "f": "intent", "cid": "c-1", "type": "ok", "outcome": "committed"}
    torn = shard(
        tmp_path / "w0.jsonl",
        {"t": 1.0, "process": "w0", "f": "intent", "cid": "c-1", "type": "invoke"},
        ok,
        tail=b'{"t": 2.0, "process": "w0", "f": "int',
    )
    other = shard(tmp_path / "w1.jsonl", {"t": 0.2, "process": "w1"}, {"t": 9.0, "process": "w1"})
    merged = merge_shards([torn, other], tmp_path / "history.jsonl")
    ops = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert ok in ops  # the accepted intent is not lost
    assert [op["t"] for op in ops] == [0.2, 1.0, 1.5, 9.0]
    assert len(merged.problems) == 1 and merged.problems[0].startswith("w0.jsonl:3: torn last line")
    assert "read up to line 2" in merged.problems[0]


def test_a_malformed_line_inside_a_shard_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "w0.jsonl"
    path.write_bytes(b'{"t": 1.0}\nnot json\n{"t": 2.0}\n{"no_t": 1}\n{"t": 1.5}\n')
    merged = merge_shards([path], tmp_path / "history.jsonl")
    assert [json.loads(line)["t"] for line in (tmp_path / "history.jsonl").read_text().splitlines()] == [
        1.0,
        2.0,
        1.5,
    ]
    assert [p.split(":")[1] for p in merged.problems] == ["2", "4", "5"]
    assert "before the line above it" in merged.problems[2]


# What `repeat` reposts with the Locust engine: answers read back from the end of the shards


def test_recent_answers_are_read_back_from_a_shards_end(tmp_path: Path) -> None:
    lines = []
    for i in range(5000):
        agent = AGENTS[i % 3]
        cid = f"run-{i:06d}"
        lines.append({"t": i / 100, "process": "w0.c0", "f": "intent", "cid": cid, "agent": agent})
        lines[-1] |= {"type": "invoke", "key": f"k{i % 7}", "value": i}
        done = {"t": i / 100 + 0.001, "process": "w0.c0", "f": "intent", "cid": cid, "agent": agent}
        lines.append(done | ({"type": "ok", "outcome": "committed"} if i % 5 else {"type": "info"}))
    path = shard(tmp_path / "history-0.jsonl", *lines, tail=b'{"t": 99.0, "process": "w0.c0", "f": "in')
    answered = recent_answers(path, "agent-1", 1000)
    cids = [a.cid for _, a in answered]
    expected = [f"run-{i:06d}" for i in range(5000) if i % 3 == 0 and i % 5][-1000:]
    assert cids == expected  # the most recent, oldest first; info answers are not answers
    t, last = answered[-1]
    assert last == Answered(expected[-1], f"k{4998 % 7}", 4998, "committed") and t == pytest.approx(49.981)
    assert recent_answers(tmp_path / "absent.jsonl", "agent-1", 10) == []


async def test_the_locust_engine_answers_repeat_from_every_shard_bounded(tmp_path: Path) -> None:
    folder = tmp_path / "locust"
    folder.mkdir()
    for k in range(2):
        ops = []
        for i in range(k, 3000, 2):  # the worker's share: every second intent
            base = {"process": f"w{k}.c0", "f": "intent", "cid": f"run-{i:06d}", "agent": "agent-1"}
            ops += [
                base | {"t": i / 100, "type": "invoke", "key": "k1", "value": i},
                base | {"t": i / 100 + 0.002, "type": "fail", "outcome": "aborted"},
            ]
        shard(folder / f"history-{k}.jsonl", *ops)
    urls = {"agent-1": "http://127.0.0.1:1"}
    load = LocustLoad(urls, History(tmp_path / "h.jsonl"), plan(), "run", tmp_path, workers=2)
    answered = load.answered("agent-1")
    assert len(answered) == ANSWERS_KEPT
    assert [a.cid for a in answered] == [f"run-{i:06d}" for i in range(1000, 3000)]
    assert {a.outcome for a in answered} == {"aborted"} and load.answered("agent-2") == []
