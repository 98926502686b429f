"""After the load: wait until the system has drained, then read what it holds (the stream, the store,
every container's log) into the run directory (docs/run-format.md), through harness.store's names."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from surrealdb.errors import NotFoundError

from harness import shape, store
from harness.observe.analytics import write_analytics
from harness.observe.nats import jetstream_sample
from harness.topology.services import surreal_session
from harness.topology.system import System
from harness.waiting import WaitTimeout, await_until

Progress = Callable[[str], None]


async def wait_drained(sut: System, within: float, say: Progress) -> None:
    """Until every agent's buffer is empty and the projector has acked everything; past `within`, say so
    and go on (what was left is in the files the checkers read)."""

    async def drained() -> bool:
        async with httpx.AsyncClient(timeout=1.0) as http:
            for a in sut.cfg.agent_names():
                h = (await http.get(f"{sut.http_url(a)}/healthz")).json()
                if h.get("buffer_depth", 0) > 0:
                    return False
            js = await jetstream_sample(http, sut) or {}
            return js.get("consumer_num_pending", 1) == 0 and js.get("consumer_num_ack_pending", 1) == 0

    try:
        await await_until(drained, "buffers empty and the projector caught up", timeout=within, interval=0.25)
    except WaitTimeout as e:
        say(f"not drained: {e}")


async def collect(
    sut: System, out: Path, say: Progress, t0_unix: float | None = None, within: float = 15.0
) -> dict[str, Any]:
    """The stream into stream.jsonl and the store into store.jsonl, each written as it is read (a soak's
    hundreds of thousands of records never sit in memory); with an analytics node, its applied changes
    and view into analytics.jsonl once it has followed the store, or scenario.json's `analytics` field
    saying why it could not be read (`t0_unix`: the run's t = 0, `within`: how long it may take);
    returns how many of each.

    The store first: the projector writes only what the stream holds, so every row read then has its
    message in the stream read after it (or legally gone by a limit). Read the other way round, a
    system still projecting (undrained) wrote rows whose messages came after the stream was read, and
    they looked like a second writer's (`unsourced-write`): the 30-min soak with buffer-unbounded
    showed 10 such rows."""
    rows = await write_store(sut.surreal_url, out / store.STORE)
    messages = await write_stream(sut.nats_servers, out / store.STREAM)
    say(f"collected {messages} stream messages, {rows} store rows")
    counts: dict[str, Any] = {"stream_msgs": messages, "store_rows": rows}
    if sut.cfg.analytics:
        t0 = t0_unix if t0_unix is not None else time.time()
        counts["analytics_applied"] = await write_analytics(sut, out, t0, within, say)
    return counts


async def write_stream(servers: str | list[str], path: Path) -> int:
    """Every message of the stream, in order, a line each (`stream_line`): seq, subject, msg_id, and the
    body's fields. `servers`: every NATS node (any that answers will do: the cluster serves the stream
    from its leader)."""
    nc = await nats.connect(servers, connect_timeout=2)
    n = 0
    try:
        js = nc.jetstream(timeout=5)
        info = await js.stream_info(shape.STREAM)
        with open(path, "wb") as f:
            if info.state.messages == 0:
                return 0
            sub = await js.subscribe(shape.STREAM_SUBJECTS, stream=shape.STREAM, ordered_consumer=True)
            try:
                while True:
                    msg = await sub.next_msg(timeout=5)
                    seq = msg.metadata.sequence.stream
                    headers = msg.headers or {}
                    f.write(stream_line(seq, msg.subject, headers.get("Nats-Msg-Id"), msg.data))
                    n += 1
                    if seq >= info.state.last_seq:
                        return n
            finally:
                await sub.unsubscribe()
    finally:
        await nc.close()


STORE_PAGE = 10_000  # rows a query: pages follow the record id, so a row is never read twice


async def write_store(
    url: str, path: Path, ns: str = shape.SURREAL_NS, db_name: str = shape.SURREAL_DB
) -> int:
    """Every row the projector wrote, a line each (`store_line`): cid, key, value, stream_seq."""
    n = 0
    fields = "cid, key, value, stream_seq, id"
    async with surreal_session(url, ns, db_name) as db:
        with open(path, "wb") as f:
            after = None
            while True:
                where = "" if after is None else "WHERE id > $after "
                try:
                    rows = await db.query(
                        f"SELECT {fields} FROM {shape.STORE_TABLE} {where}ORDER BY id LIMIT {STORE_PAGE}",
                        {"after": after},
                    )
                except NotFoundError as e:
                    if not _nothing_stored(e, ns, db_name):
                        raise
                    return n  # nothing was ever projected: an empty store, judged as such (unprojected)
                for row in rows or []:
                    if isinstance(row, dict):  # anything else is written set aside whole, not a crash
                        row = dict(row)
                        after = row.pop("id", after)
                    f.write(store_line(row))
                    n += 1
                if not rows or len(rows) < STORE_PAGE:
                    return n


def _nothing_stored(e: NotFoundError, ns: str, db_name: str) -> bool:
    """SurrealDB 3 answers a SELECT from a table, database or namespace that was never made with NotFound:
    the projector wrote nothing (a system that never projected), which is an empty store, not a failure."""
    return e.table_name == shape.STORE_TABLE or e.database_name == db_name or e.namespace_name == ns


# A line of stream.jsonl or store.jsonl is built from what the system under test wrote, so nothing in
# it may make the line lie or unreadable. The harness's fields are its own; what cannot stand in the
# line as the format has it is kept beside it, under names the format's readers ignore:
#   body        a message body that is JSON but not an object, as that JSON value
#   raw         a body that is not UTF-8 JSON, as text (a byte that is not UTF-8 as \xNN), and
#   body_error  why it is there
#   set_aside   {field: {"why": ..., "value": v}} for a body's (or a row's) field that could not stand
#               in the line: a name the harness owns (a body's "seq": 1 would lie about the stream), a
#               value of another type than the format's (a cid that is not a string, a stream_seq that
#               is not a stream sequence: an integer, 1 to 2^63-1), or one JSON cannot carry (NaN, a
#               lone surrogate, nesting past MAX_DEPTH, a type SurrealDB has and JSON has not), then as
#               "repr" (Python's text of it) instead of "value".
# A reader of the format sees the line's cid, key and value as the format types them; the checkers
# can tell a line that had something set aside by `set_aside`, `body` or `raw`.
HARNESS_FIELDS = ("seq", "subject", "msg_id")
RESERVED = frozenset((*HARNESS_FIELDS, "body", "raw", "body_error", "set_aside"))
MAX_DEPTH = 64  # nesting a line keeps; the checkers' JSON reader gives up near 1,000 levels
REPR_KEPT = 2000  # characters of a value's repr kept in set_aside
RAW_KEPT = 64 * 1024  # characters of a body's text kept in raw: a line stays far below the readers' cap
_STRING = {"cid"}  # fields the format types as a string (or null)
_SEQUENCE = {"stream_seq"}  # ... as a stream sequence (or null)


def stream_line(seq: int, subject: str, msg_id: str | None, data: bytes) -> bytes:
    """One line of stream.jsonl: the harness's fields (seq, subject, msg_id) and the body's, as above."""
    line: dict[str, Any] = {"seq": seq, "subject": _text(subject), "msg_id": _text(msg_id)}
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        return _encoded(line | _raw(data, f"not UTF-8 (byte {e.start})"), line)
    except RecursionError:
        return _encoded(line | _raw(data, "JSON nested too deeply to read"), line)
    except ValueError as e:  # not JSON, or an integer of more digits than Python converts
        return _encoded(line | _raw(data, f"not JSON ({str(e)[:200]})"), line)
    if not isinstance(body, dict):
        if _writable(body):
            return _encoded(line | {"body": body}, line)
        return _encoded(line | _raw(data, f"JSON this line cannot hold ({_why_not(body)})"), line)
    set_aside: dict[str, Any] = {}
    for name, value in body.items():
        if name in RESERVED:
            set_aside[_text(name)] = _kept(value, "a name the harness's line owns")
        else:
            _place(line, set_aside, name, value)
    if set_aside:
        line["set_aside"] = set_aside
    return _encoded(line, {k: line[k] for k in HARNESS_FIELDS})


def store_line(row: Any) -> bytes:
    """One line of store.jsonl: a row's fields (cid, key, value, stream_seq), as above."""
    if not isinstance(row, dict):
        return _encoded({"set_aside": {"row": _kept(row, "a row that is not an object")}}, {})
    line: dict[str, Any] = {}
    set_aside: dict[str, Any] = {}
    for name, value in row.items():
        _place(line, set_aside, name, value)
    if set_aside:
        line["set_aside"] = set_aside
    return _encoded(line, {})


def _place(line: dict[str, Any], set_aside: dict[str, Any], name: Any, value: Any) -> None:
    """`name: value` into the line when the format's readers can hold it there, else set aside."""
    if not isinstance(name, str) or not _writable(name):
        set_aside[_text(str(name))] = _kept(value, "a field name that is not Unicode text")
    elif name in _STRING and value is not None and not isinstance(value, str):
        set_aside[name] = _kept(value, f"{name} is a string in the format")
    elif name in _SEQUENCE and value is not None and not _sequence(value):
        set_aside[name] = _kept(value, f"{name} is a stream sequence in the format (an integer, 1 to 2^63-1)")
    elif not _writable(value):
        set_aside[name] = _kept(value, _why_not(value))
    else:
        line[name] = value


def _sequence(value: Any) -> bool:
    return store.valid_seq(value)


def _writable(value: Any, depth: int = 0) -> bool:
    """Whether `value` is JSON its readers take back as it was: finite numbers, Unicode text, no
    nesting past MAX_DEPTH, nothing but JSON's own types."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return value.bit_length() < 13_000  # str() refuses past 4,300 digits
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if depth >= MAX_DEPTH:
        return False
    if isinstance(value, list):
        return all(_writable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _writable(k) and _writable(v, depth + 1) for k, v in value.items())
    return False


def _why_not(value: Any) -> str:
    """Why `_writable(value)` is false, for `set_aside`'s `why`."""
    if isinstance(value, float):
        return "a number JSON has not"
    if isinstance(value, str):
        return "a string with a lone surrogate, not Unicode text"
    if isinstance(value, int):
        return "an integer too long to write"
    if isinstance(value, list | dict):
        return f"nested deeper than {MAX_DEPTH} levels, or holding a value JSON has not"
    return f"a {type(value).__name__}, not a JSON type"


def _kept(value: Any, why: str) -> dict[str, Any]:
    if _writable(value):
        return {"why": why, "value": value}
    return {"why": why, "repr": _repr(value)}


def _repr(value: Any) -> str:
    try:
        text = ascii(value)
    except (RecursionError, ValueError):  # nested past the interpreter's limit; an int of 4,300+ digits
        text = f"<a {type(value).__name__} too deep or too long to show>"
    return text if len(text) <= REPR_KEPT else text[:REPR_KEPT] + "..."


def _text(value: str | None) -> str | None:
    """A string the line can hold: a lone surrogate (from a header, say) as its escape."""
    if value is None or _writable(value):
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _raw(data: bytes, why: str) -> dict[str, Any]:
    text = data.decode("utf-8", "backslashreplace")
    if len(text) > RAW_KEPT:
        text = text[:RAW_KEPT]
        why += f"; its first {RAW_KEPT} characters kept, of {len(data)} bytes"
    return {"raw": text, "body_error": why}


def _encoded(line: dict[str, Any], fallback: dict[str, Any]) -> bytes:
    """The line as strict ASCII JSON. One longer than the format's readers take (store.MAX_LINE_BYTES: a
    body or value of a megabyte) keeps only `fallback` (the harness's fields) and the cid, and says so."""
    encoded = json.dumps(line, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    if len(encoded) <= store.MAX_LINE_BYTES:
        return encoded
    short = dict(fallback)
    cid = line.get("cid")
    if isinstance(cid, str) and len(cid) <= REPR_KEPT:
        short["cid"] = cid
    why = f"a line of {len(encoded)} bytes, longer than the {store.MAX_LINE_BYTES} the format's readers take"
    short["set_aside"] = {"line": {"why": why, "repr": encoded[:REPR_KEPT].decode() + "..."}}
    return json.dumps(short, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def save_logs(sut: System, out: Path) -> None:
    """Every container's log into the run directory's logs/: a cid can be followed through them."""
    folder = out / store.LOGS
    folder.mkdir(exist_ok=True)
    for name in list(sut.run.containers):
        try:
            (folder / f"{name}.log").write_bytes(sut.run.raw(name).logs())
        except Exception as e:  # a log we cannot read must not hide the run's result
            (folder / f"{name}.log").write_text(f"(log unavailable: {e})\n")
