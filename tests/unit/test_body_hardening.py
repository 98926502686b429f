"""Hostile input at netsync's edges (issue 17): whatever a client or a peer sends, the answer names
the field and what is allowed, and no handler crashes; nothing a rule refuses reaches NATS."""

from __future__ import annotations

import io
import json

import pytest
import trio
import trio.testing
from websockets.exceptions import ConnectionClosedError

from netsync import telemetry
from netsync.http import BODY_TIMEOUT, MAX_BODY, BodyRefused, ClientGone, guarded, read_body
from netsync.logs import Log
from netsync.orchestrator import Orchestrator
from netsync.projection import Malformed, parse_body
from netsync.settings import OrchestratorSettings
from netsync.surreal import StatementFailed, SurrealUnavailable, refused


def test_the_orchestrator_refuses_a_cid_that_breaks_the_rule(monkeypatch) -> None:
    # The cid becomes the Nats-Msg-Id header, whose trailing newline NATS strips.
    monkeypatch.setenv("NETSYNC_NATS_URL", "nats://127.0.0.1:1")  # never reached
    orchestrator = Orchestrator(OrchestratorSettings.from_env())
    try:
        for cid in ("abc\n", "a\r\nX-Injected: 1", "x" * 65):
            frame = {"type": "decision", "cid": cid, "key": "k", "value": 1}
            answer = trio.run(orchestrator.on_decision, frame)
            assert answer["status"] == "invalid", answer
            assert "cid must be" in answer["error"]
    finally:
        orchestrator.bridge.close()


def test_a_deeply_nested_stream_message_is_malformed_not_a_crash() -> None:
    with pytest.raises(Malformed, match="not JSON"):
        parse_body(b'{"cid": "c", "key": "k", "value": ' + b"[" * 65_000)


def test_a_deeply_nested_telemetry_message_is_ignored_not_a_crash() -> None:
    # Any peer can publish on the topic; the orchestrator's scout reads it.
    assert telemetry.decode(b"[" * 65_000) is None


# -- the HTTP layer (netsync.http), driven as hypercorn drives it ------------------------------


def chunks(*parts: bytes, then: str = "end"):
    """An ASGI receive() handing out `parts`; then the body ends, the client goes away, or it stalls."""
    queue = list(parts)

    async def receive() -> dict:
        if queue:
            part = queue.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(queue) or then != "end"}
        if then == "stall":
            await trio.sleep_forever()
        if then == "gone":
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


def read(receive, headers=()) -> bytes:
    scope = {"type": "http", "headers": list(headers)}
    return trio.run(read_body, receive, scope, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_body_in_many_chunks_is_read_whole() -> None:
    assert read(chunks(b'{"key":', b' "k", "value"', b": 1}")) == b'{"key": "k", "value": 1}'


def test_a_body_over_the_limit_is_refused_as_413() -> None:
    with pytest.raises(BodyRefused) as e:
        read(chunks(b"x" * 40_000, b"x" * 40_000))
    assert e.value.status == 413 and f"{MAX_BODY}" in str(e.value)


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async def nothing() -> dict:
        raise AssertionError("the body was read")

    with pytest.raises(BodyRefused) as e:
        read(nothing, headers=[(b"content-length", str(MAX_BODY + 1).encode())])
    assert e.value.status == 413


def test_a_slow_body_is_refused_as_408_after_the_deadline() -> None:
    with pytest.raises(BodyRefused) as e:
        read(chunks(b'{"key": "k"', then="stall"))
    assert e.value.status == 408 and f"{BODY_TIMEOUT:g} s" in str(e.value)


def test_a_client_that_went_away_mid_body_is_not_answered() -> None:
    with pytest.raises(ClientGone):
        read(chunks(b'{"key": "k"', then="gone"))


def test_a_failing_handler_answers_a_json_500_and_logs_it() -> None:
    async def broken(scope, receive, send) -> None:
        raise RuntimeError("boom")

    sent: list[dict] = []
    out = io.StringIO()

    async def send(msg: dict) -> None:
        sent.append(msg)

    trio.run(
        guarded(broken, Log("agent-1", out)), {"type": "http", "method": "POST", "path": "/x"}, None, send
    )
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"])["error"] == "internal error: RuntimeError"
    logged = json.loads(out.getvalue())
    assert (logged["level"], logged["msg"], logged["path"]) == ("error", "handler failed", "/x")
    assert "boom" in logged["error"]


# -- the projector: what no write can store is malformed; what is the statement's fault is refused --


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'{"cid": "c", "key": "\\ud800", "value": 1}', "key is not valid Unicode"),
        (b'{"cid": "\\udc00", "key": "k", "value": 1}', "cid is not valid Unicode"),
        (b'{"cid": "c", "key": "k", "value": 9223372036854775808}', "64-bit"),
        (b'{"cid": "c", "key": "k", "value": -9223372036854775809}', "64-bit"),
    ],
)
def test_a_message_no_write_could_store_is_malformed(data: bytes, says: str) -> None:
    with pytest.raises(Malformed, match=says):
        parse_body(data)


def test_the_64_bit_edges_are_projected() -> None:
    for value in (-(2**63), 2**63 - 1):
        assert parse_body(json.dumps({"cid": "c", "key": "ключ", "value": value}).encode())["value"] == value


def test_only_the_statements_own_failures_count_as_refusals() -> None:
    assert refused(StatementFailed("Found 5000 for field `value`", "Internal"))
    assert refused(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    for transient in (
        SurrealUnavailable("no answer within 10 s"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        ConnectionClosedError(None, None),
    ):
        assert not refused(transient), transient


def test_a_failed_store_is_never_the_statements_fault() -> None:
    # As SurrealDB 3 answered the projector while its disk failed with EIO (projector-disk-error).
    # More shapes, and values that echo these words, in tests/unit/test_store_failures.py.
    eio = (
        "There was a problem with a transaction: WAL error: IO error: "
        "kind=uncategorized error, message=Input/output error (os error 5)"
    )
    conflict = "Failed to commit transaction due to a read or write conflict. This transaction can be retried"
    for answer in (eio, conflict):
        assert not refused(StatementFailed(answer)), answer
