"""The lines collect.py writes from what the system under test holds (stream.jsonl, store.jsonl): the
harness's fields are its own, and no body or row can make a line lie or unreadable to the checkers."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
from pathlib import Path
from typing import Any

import pytest

from harness import collect, store
from harness.checkers.run import Run
from harness.collect import store_line, stream_line
from harness.topology import services

SUBJECT = "root.solar.command.sentiment.set"
GOOD = {"cid": "c-1", "key": "k7", "value": 5, "proposer": "agent-1", "decided_at": 1.5}


def strict(line: bytes) -> dict[str, Any]:
    """A line as a strict JSON reader takes it: one line, ASCII, no NaN."""
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    assert len(line) <= store.MAX_LINE_BYTES
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in {line[:80]!r}"))


def checked(tmp_path: Path, name: str, *lines: bytes) -> Run:
    """The lines as one file of a run directory, read by the checkers as `solar-chaos check` reads it."""
    (tmp_path / name).write_bytes(b"".join(lines))
    run = Run(tmp_path)
    column = run.stream if name == store.STREAM else run.store
    assert column.cid.size + column.no_cid == len(lines)
    return run


def message(body: bytes, msg_id: str | None = "c-1") -> dict[str, Any]:
    return strict(stream_line(88, SUBJECT, msg_id, body))


def test_a_well_formed_message_is_the_formats_line() -> None:
    line = message(json.dumps(GOOD).encode())
    assert line == {"seq": 88, "subject": SUBJECT, "msg_id": "c-1", **GOOD}
    assert list(line)[:3] == ["seq", "subject", "msg_id"]


def test_a_body_cannot_overwrite_the_harnesss_fields() -> None:
    body = {**GOOD, "seq": 1, "subject": "elsewhere", "msg_id": "forged", "set_aside": 3, "raw": "x"}
    line = message(json.dumps(body).encode())
    assert (line["seq"], line["subject"], line["msg_id"]) == (88, SUBJECT, "c-1")
    assert line["set_aside"]["seq"] == {"why": "a name the harness's line owns", "value": 1}
    assert line["set_aside"]["msg_id"]["value"] == "forged"
    assert line["set_aside"]["set_aside"]["value"] == 3 and line["set_aside"]["raw"]["value"] == "x"
    assert "raw" not in line and {k: line[k] for k in GOOD} == GOOD


@pytest.mark.parametrize("value", [[1, 2], 12, -0.5, "committed", None, True, [], {"deep": [[{}]]}])
def test_a_body_that_is_json_but_not_an_object_is_kept_as_that_value(value: Any) -> None:
    line = message(json.dumps(value).encode())
    if isinstance(value, dict):
        assert line["deep"] == value["deep"]
    else:
        assert line == {"seq": 88, "subject": SUBJECT, "msg_id": "c-1", "body": value}


@pytest.mark.parametrize(
    ("body", "raw", "why"),
    [
        (b"\xff\xfe{}", "\\xff\\xfe{}", "not UTF-8 (byte 0)"),
        (b'{"cid": "c-1", "key": "\xe9"}', '{"cid": "c-1", "key": "\\xe9"}', "not UTF-8 (byte 23)"),
        (b"not json", "not json", "not JSON"),
        (b"", "", "not JSON"),
        (b'{"cid": "c-1"', '{"cid": "c-1"', "not JSON"),
        (b'{"value": ' + b"9" * 5000 + b"}", None, "not JSON"),
        (b"[" * 100_000, None, "JSON nested too deeply"),
    ],
)
def test_a_body_that_is_not_utf8_json_is_kept_as_text(body: bytes, raw: str | None, why: str) -> None:
    line = message(body)
    assert (line["seq"], line["msg_id"]) == (88, "c-1") and "cid" not in line
    assert line["body_error"].startswith(why)
    assert line["raw"] == raw if raw is not None else line["raw"] == body.decode()[: collect.RAW_KEPT]


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        (b'{"cid": 7, "key": "k", "value": 1}', "cid", "cid is a string"),
        (b'{"cid": ["c-1"], "key": "k", "value": 1}', "cid", "cid is a string"),
        (b'{"cid": "\\ud800", "key": "k", "value": 1}', "cid", "a string with a lone surrogate"),
        (b'{"cid": "c-1", "key": "\\udfff", "value": 1}', "key", "a string with a lone surrogate"),
        (b'{"cid": "c-1", "key": "k", "value": NaN}', "value", "a number JSON has not"),
        (b'{"cid": "c-1", "key": "k", "value": -Infinity}', "value", "a number JSON has not"),
        (b'{"cid": "c-1", "key": "k", "value": 1e999}', "value", "a number JSON has not"),
        (b'{"cid": "c-1", "key": ' + b"[" * 200 + b"]" * 200 + b', "value": 1}', "key", "nested deeper"),
        (b'{"cid": "c-1", "key": "k", "value": {"\\ud800": 1}}', "value", "nested deeper than 64 levels, or"),
    ],
)
def test_a_body_field_the_format_cannot_hold_is_set_aside(
    tmp_path: Path, body: bytes, field: str, why: str
) -> None:
    raw = stream_line(88, SUBJECT, "c-1", body)
    line = strict(raw)
    assert field not in line and line["set_aside"][field]["why"].startswith(why)
    assert "value" in line["set_aside"][field] or "repr" in line["set_aside"][field]
    checked(tmp_path, store.STREAM, raw, stream_line(89, SUBJECT, "c-2", json.dumps(GOOD).encode()))


def test_a_header_that_is_not_unicode_text_is_escaped_not_a_crash(tmp_path: Path) -> None:
    raw = stream_line(88, SUBJECT, "c-\udcff", json.dumps(GOOD).encode())
    assert strict(raw)["msg_id"] == "c-\\udcff"
    checked(tmp_path, store.STREAM, raw)


def test_a_body_too_long_for_a_line_keeps_the_harnesss_fields_and_the_cid(tmp_path: Path) -> None:
    body = json.dumps({"cid": "c-1", "key": "k", "value": "\u00e9" * 400_000}, ensure_ascii=False)
    raw = stream_line(88, SUBJECT, "c-1", body.encode())
    line = strict(raw)
    assert {k: line[k] for k in ("seq", "subject", "msg_id", "cid")} == {
        "seq": 88,
        "subject": SUBJECT,
        "msg_id": "c-1",
        "cid": "c-1",
    }
    assert "longer than the 1048576" in line["set_aside"]["line"]["why"]
    checked(tmp_path, store.STREAM, raw)


# store.jsonl: a row from SurrealDB, whatever the system under test put there


ROW = {"cid": "c-1", "key": "k7", "value": 5, "stream_seq": 88}


class RecordID:
    """Stands for the SDK's own types, which JSON has no word for."""

    def __repr__(self) -> str:
        return "RecordID(table_name=intent, id='c-1')"


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("stream_seq", "88", "stream_seq is a stream sequence"),
        ("stream_seq", 88.0, "stream_seq is a stream sequence"),
        ("stream_seq", True, "stream_seq is a stream sequence"),
        ("stream_seq", -1, "stream_seq is a stream sequence"),
        ("stream_seq", 0, "stream_seq is a stream sequence"),
        ("stream_seq", 2**63, "stream_seq is a stream sequence"),
        ("cid", 12, "cid is a string"),
        ("cid", "c-\ud800", "a string with a lone surrogate"),
        ("value", float("nan"), "a number JSON has not"),
        ("value", float("inf"), "a number JSON has not"),
        ("value", decimal.Decimal("5"), "a Decimal, not a JSON type"),
        ("value", datetime.datetime(2026, 1, 1), "a datetime, not a JSON type"),
        ("value", b"\x00\xff", "a bytes, not a JSON type"),
        ("key", RecordID(), "a RecordID, not a JSON type"),
        ("key", {1, 2}, "a set, not a JSON type"),
        ("value", [[[1, {"a": float("nan")}]]], "nested deeper than 64 levels, or holding"),
    ],
)
def test_a_row_field_the_format_cannot_hold_is_set_aside(
    tmp_path: Path, field: str, value: Any, why: str
) -> None:
    raw = store_line({**ROW, field: value})
    line = strict(raw)
    assert field not in line and line["set_aside"][field]["why"].startswith(why)
    assert {k: v for k, v in ROW.items() if k != field}.items() <= line.items()
    checked(tmp_path, store.STORE, raw, store_line(ROW))


def test_a_well_formed_row_and_odd_but_valid_values_are_written_as_they_are(tmp_path: Path) -> None:
    rows = [
        ROW,
        {**ROW, "value": 2**63 - 1, "stream_seq": 2**63 - 1},
        {**ROW, "key": "\u00e9\U0001f600", "value": [True, None, {"a": 1.5}]},
        {"cid": None, "key": None, "value": None, "stream_seq": None},
        {"cid": "c-2"},
    ]
    lines = [store_line(row) for row in rows]
    assert [strict(line) for line in lines] == rows
    checked(tmp_path, store.STORE, *lines)


def test_a_row_that_is_not_an_object_is_set_aside_whole(tmp_path: Path) -> None:
    raw = store_line(["c-1", 5])
    assert strict(raw) == {"set_aside": {"row": {"why": "a row that is not an object", "value": ["c-1", 5]}}}
    checked(tmp_path, store.STORE, raw)


class Surreal:
    """collect's SurrealDB client, answering one page of rows the SDK could return."""

    rows = [
        {**ROW, "id": RecordID()},
        {**ROW, "cid": "c-2", "value": decimal.Decimal("1.5"), "id": RecordID()},
        {**ROW, "cid": "c-3", "stream_seq": "90", "value": float("nan"), "id": RecordID()},
        ["c-4", 5],
    ]

    def __init__(self, url: str) -> None:
        pass

    async def connect(self) -> None:
        pass

    async def signin(self, _: object) -> None:
        pass

    async def use(self, *_: object) -> None:
        pass

    async def query(self, *_: object) -> list[Any]:
        return [dict(row) if isinstance(row, dict) else row for row in self.rows]

    async def close(self) -> None:
        pass


def test_write_store_writes_every_row_the_checkers_can_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(services, "AsyncSurreal", Surreal)
    assert asyncio.run(collect.write_store("ws://x", tmp_path / store.STORE)) == 4
    run = checked(tmp_path, store.STORE, *(tmp_path / store.STORE).read_bytes().splitlines(keepends=True))
    assert run.store.cid.size == 3 and run.store.no_cid == 1
    lines = [strict(line) for line in (tmp_path / store.STORE).read_bytes().splitlines(keepends=True)]
    assert lines[0] == ROW and lines[2]["set_aside"]["stream_seq"]["value"] == "90"
    assert lines[1]["set_aside"]["value"]["repr"] == "Decimal('1.5')"
    assert lines[3]["set_aside"]["row"]["value"] == ["c-4", 5]
