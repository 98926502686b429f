"""Hostile input at netsync's edges (issue 17): whatever a client or a peer sends, the answer names
the field and what is allowed, and no handler crashes; nothing a rule refuses reaches NATS."""

from __future__ import annotations

import pytest
import trio

from netsync import telemetry
from netsync.orchestrator import Orchestrator
from netsync.projection import Malformed, parse_body
from netsync.settings import OrchestratorSettings


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
