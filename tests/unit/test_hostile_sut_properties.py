"""Properties over whatever the system under test may hand the harness: any answer body (ops.completion),
any message body (collect.stream_line), any row (collect.store_line). None raises, and every line written
from them is strict JSON the checkers read, with the harness's own fields as the harness set them."""

from __future__ import annotations

import datetime
import decimal
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import store
from harness.checkers.run import Run
from harness.collect import store_line, stream_line
from harness.history import History
from harness.load.ops import Intent, completion

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text with anything in it, lone surrogates too (JSON's "\ud800" escape reads back as one).
TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
FIELDS = ["cid", "key", "value", "stream_seq", "quorum_ms", "outcome", "reason", "seq", "subject", "msg_id"]
OBJECTS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), TEXT), JSONISH, max_size=6)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN as NaN, a lone surrogate as its escape: what a peer may send


PAYLOADS = st.one_of(OBJECTS.map(encoded), JSONISH.map(encoded), st.binary(max_size=40))


def strict(line: bytes) -> dict[str, Any]:
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    return json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))


INTENT = Intent(0, 0.0, "run-000000", "agent-1", "k1", 1)


@SETTINGS
@given(status=st.sampled_from([200, 202, 409, 429, 400, 413, 500, 201, 302]), payload=PAYLOADS)
def test_any_answer_is_recorded_as_a_line_the_checkers_read(status: int, payload: bytes) -> None:
    done = completion("c0", INTENT, status, payload, None)
    assert done["type"] in ("ok", "fail", "info")
    if done["type"] == "ok":
        seq = done.get("stream_seq", 1)
        assert type(seq) is int and 1 <= seq <= 2**63 - 1
        assert "quorum_ms" not in done or (type(done["quorum_ms"]) in (int, float) and done["quorum_ms"] >= 0)
    if "contract" in done:
        assert done["type"] == "info" and done["contract"].split(": ")[0] in (
            "body",
            "cid",
            "outcome",
            "stream_seq",
            "quorum_ms",
            "reason",
            "status",
        )
    with tempfile.TemporaryDirectory() as tmp:
        with History(Path(tmp) / store.HISTORY) as history:
            history.record({"process": "c0", "f": "intent", "cid": INTENT.cid, "type": "invoke"})
            line = history.record(done)
        strict(json.dumps(line).encode() + b"\n")
        assert Run(Path(tmp)).history.ops.cid.size == 1


@SETTINGS
@given(payload=PAYLOADS, msg_id=st.one_of(st.none(), TEXT))
def test_any_message_body_is_a_line_with_the_harnesss_fields(payload: bytes, msg_id: str | None) -> None:
    line = stream_line(42, "root.solar.command.sentiment.set", msg_id, payload)
    got = strict(line)
    assert got["seq"] == 42 and got["subject"] == "root.solar.command.sentiment.set"
    if msg_id is not None and not any("\ud800" <= c <= "\udfff" for c in msg_id):
        assert got["msg_id"] == msg_id
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / store.STREAM).write_bytes(line)
        column = Run(Path(tmp)).stream
        assert column.cid.size + column.no_cid == 1


class Opaque:
    """A type of the SurrealDB SDK's own (RecordID, Table, Duration...), which JSON has no word for."""

    def __repr__(self) -> str:
        return "Opaque()"


ROW_VALUES = st.one_of(
    JSONISH,
    st.just(Opaque()),
    st.decimals(allow_nan=True),
    st.datetimes().map(lambda d: d.replace(tzinfo=datetime.UTC)),
    st.binary(max_size=8),
    st.just(decimal.Decimal("1e9999")),
)


@SETTINGS
@given(row=st.dictionaries(st.one_of(st.sampled_from(FIELDS), TEXT), ROW_VALUES, max_size=6))
def test_any_row_is_a_line_the_checkers_read(row: dict[str, Any]) -> None:
    line = store_line(row)
    got = strict(line)
    for name in ("cid", "key", "value", "stream_seq"):
        assert name not in got or name in row
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / store.STORE).write_bytes(line)
        column = Run(Path(tmp)).store
        assert column.cid.size + column.no_cid == 1
