"""An agent's answer that breaks docs/contract.md's shape (harness/load/ops.py): that operation becomes
`info` with a `contract` field naming what was wrong, never a history the checkers refuse whole."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from harness.checkers.run import COMMITTED, INFO, REJECTED, Run
from harness.history import History
from harness.load import Load, LoadPlan
from harness.load.ops import Intent, completion
from tests.unit.test_http1 import read_request

INTENT = Intent(0, 0.0, "run-000000", "agent-2", "k3", 5)
GOOD_200 = {"cid": "run-000000", "outcome": "committed", "stream_seq": 12, "quorum_ms": 5.5}


def answer(status: int, body: object) -> dict:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return completion("c1", INTENT, status, payload, None)


def readable_by_the_checkers(tmp_path: Path, *ops: dict) -> Run:
    """`ops` written as the load writes them, read back as `solar-chaos check` reads them."""
    with History(tmp_path / "history.jsonl") as history:
        for op in ops:
            history.record(op)
    run = Run(tmp_path)
    assert run.history.ops.cid.size == len({op["cid"] for op in ops})
    return run


@pytest.mark.parametrize(
    ("status", "body", "field"),
    [
        (200, {**GOOD_200, "stream_seq": "12"}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": 12.0}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": True}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": None}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": -3}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": 0}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": 2**64}, "stream_seq"),
        (200, {**GOOD_200, "stream_seq": [12]}, "stream_seq"),
        (200, {**GOOD_200, "quorum_ms": "5"}, "quorum_ms"),
        (200, {**GOOD_200, "quorum_ms": False}, "quorum_ms"),
        (200, {**GOOD_200, "quorum_ms": -1}, "quorum_ms"),
        (200, b'{"cid": "run-000000", "stream_seq": 12, "quorum_ms": NaN}', "quorum_ms"),
        (200, b'{"cid": "run-000000", "stream_seq": 12, "quorum_ms": Infinity}', "quorum_ms"),
        (200, b'{"cid": "run-000000", "stream_seq": 12, "quorum_ms": 1e999}', "quorum_ms"),
        (200, {**GOOD_200, "quorum_ms": 10**400}, "quorum_ms"),
        (200, {**GOOD_200, "outcome": 1}, "outcome"),
        (200, {**GOOD_200, "outcome": "pending-commit"}, "outcome"),
        (202, {"cid": "run-000000", "outcome": "committed", "quorum_ms": 1}, "outcome"),
        (200, {**GOOD_200, "cid": "run-000001"}, "cid"),
        (200, {**GOOD_200, "cid": 7}, "cid"),
        (202, {"cid": "run-000000", "outcome": "pending-commit", "quorum_ms": "1"}, "quorum_ms"),
        (202, {"cid": "run-000000", "outcome": "pending-commit", "stream_seq": "4"}, "stream_seq"),
        (409, {"cid": "run-000000", "outcome": "aborted", "reason": 3}, "reason"),
        (429, {"cid": "run-000000", "outcome": "rejected", "reason": "\udfff"}, "reason"),
        (429, {"cid": "run-000000", "outcome": ["rejected"]}, "outcome"),
        (200, [GOOD_200], "body"),
        (200, 12, "body"),
        (200, "committed", "body"),
        (200, None, "body"),
        (409, b"not json", "body"),
        (200, b'{"stream_seq": 1' + b"2" * 5000 + b"}", "body"),
        (200, b"[" * 100_000 + b"]" * 100_000, "body"),
        (202, b'{"cid": "run-000000", "outcome": "pending-commit", "note": "\xff"}', "body"),
        (201, GOOD_200, "status"),
        (302, b"", "status"),
    ],
)
def test_a_malformed_answer_is_info_naming_the_field(
    tmp_path: Path, status: int, body: object, field: str
) -> None:
    done = answer(status, body)
    assert done["type"] == "info" and "outcome" not in done
    assert done["contract"].startswith(f"{field}: "), done["contract"]
    assert "stream_seq" not in done and "quorum_ms" not in done and "reason" not in done
    assert done["error"].startswith(f"HTTP {status}: ")
    invoke = {"process": "c1", "f": "intent", "cid": INTENT.cid, "agent": "agent-2", "type": "invoke"}
    run = readable_by_the_checkers(tmp_path, invoke | {"key": "k3", "value": 5}, done)
    assert list(run.history.ops.code) == [INFO]


def test_every_fault_of_one_answer_is_named() -> None:
    done = answer(200, {**GOOD_200, "stream_seq": "12", "quorum_ms": None, "outcome": "ok"})
    assert done["contract"].split("; ") == [
        "outcome: 'ok', not what HTTP 200 means ('committed')",
        "stream_seq: a string ('12'), not an integer",
        "quorum_ms: null, not a number",
    ]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, GOOD_200, {"type": "ok", "outcome": "committed", "stream_seq": 12, "quorum_ms": 5.5}),
        (200, {**GOOD_200, "stream_seq": 2**63 - 1, "quorum_ms": 0}, {"stream_seq": 2**63 - 1}),
        (200, {"cid": "run-000000", "outcome": "committed", "stream_seq": 3}, {"type": "ok"}),
        (202, {"cid": "run-000000", "outcome": "pending-commit", "quorum_ms": 80}, {"quorum_ms": 80}),
        (202, {"cid": "run-000000", "outcome": "pending-commit"}, {"type": "ok"}),
        (409, {"cid": "run-000000", "outcome": "aborted", "reason": "no quorum"}, {"reason": "no quorum"}),
        (429, {"cid": "run-000000", "outcome": "rejected", "reason": "buffer-full"}, {"type": "fail"}),
        (200, {**GOOD_200, "extra": {"any": ["thing"]}}, {"type": "ok", "stream_seq": 12}),
    ],
)
def test_a_well_formed_answer_is_recorded_with_its_fields(status: int, body: dict, expected: dict) -> None:
    done = answer(status, body)
    assert "contract" not in done
    assert done.items() >= expected.items()


# Through the asyncio engine: one malformed answer among good ones spoils nothing else.


class Agent:
    """A stand-in agent that answers every fifth intent with `stream_seq` as a string."""

    def __init__(self) -> None:
        self.served = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                cid = json.loads((await read_request(reader)).split(b"\r\n\r\n", 1)[1])["cid"]
                self.served += 1
                seq = str(self.served) if self.served % 5 == 0 else self.served
                out = json.dumps({"cid": cid, "outcome": "committed", "stream_seq": seq}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(out), out))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def test_the_engine_records_a_malformed_answer_as_info_and_the_others_as_ok(tmp_path: Path) -> None:
    agent = Agent()
    server = await asyncio.start_server(agent.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    plan = LoadPlan(rate=200, duration=0.25, keys=4, clients=2, timeout=1.0, seed=1)
    history = History(tmp_path / "history.jsonl")
    load = Load({"agent-1": f"http://127.0.0.1:{port}"}, history, plan, "run")
    history.t0 = time.monotonic()
    async with server:
        await load.run()
    history.close()
    ops = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    done = [op for op in ops if op["type"] != "invoke"]
    assert len(done) == 50 == load.done
    bad = [op for op in done if "contract" in op]
    assert len(bad) == 10 and all(op["type"] == "info" for op in bad)
    assert {op["contract"].split(" (")[0] for op in bad} == {"stream_seq: a string"}
    assert all(op["type"] == "ok" and isinstance(op["stream_seq"], int) for op in done if op not in bad)
    codes = list(Run(tmp_path).history.ops.code)
    assert codes.count(COMMITTED) == 40 and codes.count(INFO) == 10 and REJECTED not in codes


def test_a_clients_error_quoting_bytes_that_are_not_text_stays_readable(tmp_path: Path) -> None:
    done = completion("c1", INTENT, None, b"", "HTTPParseError: bad header 'x-\udcff'")
    assert done["type"] == "info" and done["error"] == "HTTPParseError: bad header 'x-\\udcff'"
    invoke = {"process": "c1", "f": "intent", "cid": INTENT.cid, "agent": "agent-2", "type": "invoke"}
    run = readable_by_the_checkers(tmp_path, invoke | {"key": "k3", "value": 5}, done)
    assert list(run.history.ops.code) == [INFO]
