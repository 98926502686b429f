"""A run directory as the checkers see it: scenario.json's settings, and each JSON-lines file read
once, in one streaming pass, into compact facts (columns of numbers per correlation id, fault
windows, sample series). Every checker reads this object; none opens a file itself.

Correlation ids are kept as 64-bit hashes in numpy columns, so ten million history lines fit in
a few hundred MiB. A hash can only make two ids look alike: what the columns flag is a suspect,
confirmed on the real strings by `traces()`, a second pass that keeps only the suspects' lines."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np

from harness import store
from harness.checkers.history import (  # noqa: F401  (re-exported: the checkers' one import)
    ABORTED,
    ACCEPTED,
    COMMITTED,
    FAILED,
    HISTORY_LINE,
    INFO,
    MAX_SEQ,
    NO_SEQ,
    NOT_INVOKED,
    PENDING,
    PENDING_COMMIT,
    REFUSED,
    REJECTED,
    SEQ_RANGE,
    UNKNOWN,
    Broken,
    Fault,
    History,
    Ops,
    _Op,
    read_history,
    valid_seq,
)
from harness.checkers.settings import Settings, read_settings
from harness.store import RunDirError

T = TypeVar("T")

_NULL = msgspec.Raw(b"null")  # a key or value the line leaves out


class _Message(msgspec.Struct):
    seq: int
    cid: str | None = None
    key: msgspec.Raw = _NULL
    value: msgspec.Raw = _NULL


class _Row(msgspec.Struct):
    cid: str | None = None
    key: msgspec.Raw = _NULL
    value: msgspec.Raw = _NULL
    stream_seq: int | None = None


class Sample(msgspec.Struct):
    """One line of samples.jsonl."""

    t: float
    source: str
    buffer_depth: float | None = None
    buffer_cap: float | None = None
    rss_bytes: float | None = None
    open_fds: float | None = None
    stream_msgs: float | None = None
    stream_bytes: float | None = None
    consumer_num_pending: float | None = None
    consumer_num_ack_pending: float | None = None
    peers_reachable: float | None = None  # read by the report, not by a checker
    # A NATS cluster's node: the stream's leader and the replicas it lags behind, as that node says.
    stream_leader: str | None = None
    replicas_lagging: list[str] | None = None
    started: float | None = None  # the process's start: a new value is a new incarnation (leak)
    # An event line, not a periodic one: the engine saw the source's container die, start, pause...
    container: str | None = None
    exit_code: int | None = None
    oom_killed: bool | None = None

    @property
    def consumer_backlog(self) -> float | None:
        """Messages the consumer has not yet acknowledged (pending + ack pending); None when the
        sample says nothing of a consumer."""
        if self.consumer_num_pending is None and self.consumer_num_ack_pending is None:
            return None
        return (self.consumer_num_pending or 0) + (self.consumer_num_ack_pending or 0)


class AgentSummary(msgspec.Struct):
    """What one telemetry summary says of one agent (docs/run-format.md, telemetry.jsonl)."""

    samples: int | None = None
    peers_reachable_min: float | None = None
    buffer_depth_max: float | None = None
    nats_reachable_last: bool | None = None


class Summary(msgspec.Struct):
    """One line of telemetry.jsonl: a scout's summary of one interval, its times on the run's clock."""

    t: float
    window_start: float
    window_end: float
    agents: dict[str, AgentSummary] = {}
    messages: int | None = None
    subject: str | None = None


class Change(msgspec.Struct):
    """One line of analytics.jsonl: an `applied` change, a `view` entry or a `gap` the consumer reported."""

    type: str
    t: float | None = None
    cid: str | None = None
    key: msgspec.Raw = _NULL
    value: msgspec.Raw = _NULL
    stream_seq: int | None = None
    versionstamp: int | None = None
    detail: str | None = None


# What the checkers decode from each JSON-lines file: only the fields they read.
LINE_TYPES: dict[str, type] = {
    store.HISTORY: _Op,
    store.STREAM: _Message,
    store.STORE: _Row,
    store.SAMPLES: Sample,
    store.TELEMETRY: Summary,
    store.ANALYTICS: Change,
}


class _Cid(msgspec.Struct):
    cid: str | None = None


STREAM_LINE = "a stream message: seq (integer), cid, key, value"
STORE_LINE = "a store row: cid, key, value, stream_seq (integer)"
SAMPLE_LINE = "a sample: t (number), source (string), and numeric metrics"
CHANGE_LINE = (
    'an analytics line: type ("applied", "view" or "gap"), and cid, key, value, stream_seq'
    " (integer), versionstamp (integer), or a gap's detail"
)
CHANGE_TYPES = ("applied", "view", "gap")
SUMMARY_LINE = (
    "a telemetry summary: t, window_start, window_end (numbers), agents (an object of agent name to"
    " samples, peers_reachable_min, buffer_depth_max, nats_reachable_last)"
)


@dataclass
class Column:
    """stream.jsonl or store.jsonl: the cid hash, a seq and a hash of (key, value) per line."""

    cid: np.ndarray  # int64
    seq: np.ndarray  # int64, NO_SEQ when absent
    kv: np.ndarray  # int64 hash of the raw key and value
    no_cid: int = 0  # lines without a cid (they belong to no intent)


@dataclass
class Trace:
    """Everything the run directory says about one cid, as written (for details and exact rules)."""

    cid: str
    ops: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _kv(key: msgspec.Raw, value: msgspec.Raw) -> int:
    return hash((bytes(key), bytes(value)))


class Run:
    """`Run(dir)`: lazily read facts of one run directory, shared by every checker."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, make: Callable[[], T]) -> T:
        """A fact derived from others, computed once for every checker that asks."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def file(self, name: str) -> Path:
        return self.path / name

    @cached_property
    def settings(self) -> Settings:
        path = self.file(store.SCENARIO)
        return read_settings(path)

    @cached_property
    def history(self) -> History:
        return read_history(self.file(store.HISTORY))

    def _column(self, name: str, struct: type, seq_field: str, expected: str) -> Column:
        path = self.file(name)
        hashes, seqs, kvs = array("q"), array("q"), array("q")
        no_cid = number = 0
        decode = msgspec.json.Decoder(struct).decode
        try:
            for number, line in store.numbered_lines(path):
                item = store.decode_line(path, number, line, decode, expected)
                seq = getattr(item, seq_field)
                if seq is not None and not 0 < seq <= MAX_SEQ:
                    # What the stream numbered, JetStream numbers from 1: a seq of 0 or below is no seq
                    # of a stream, and must not pass for an absent one.
                    raise RunDirError(path, f"{seq_field}: got {seq}", number, f"{expected}; {SEQ_RANGE}")
                if item.cid is None:
                    no_cid += 1
                    continue
                hashes.append(hash(item.cid))
                seqs.append(NO_SEQ if seq is None else seq)
                kvs.append(_kv(item.key, item.value))
        except RecursionError:
            raise RunDirError(path, "nested too deeply to read", number, expected) from None
        return Column(
            np.frombuffer(hashes, dtype=np.int64),
            np.frombuffer(seqs, dtype=np.int64),
            np.frombuffer(kvs, dtype=np.int64),
            no_cid,
        )

    @cached_property
    def stream(self) -> Column:
        return self._column(store.STREAM, _Message, "seq", STREAM_LINE)

    @cached_property
    def store(self) -> Column:
        return self._column(store.STORE, _Row, "stream_seq", STORE_LINE)

    @cached_property
    def samples(self) -> dict[str, list[Sample]]:
        """Per source ("agent-1", "jetstream", ...), its samples in time order."""
        path = self.file(store.SAMPLES)
        out: dict[str, list[Sample]] = {}
        decode = msgspec.json.Decoder(Sample).decode
        number = 0
        try:
            for number, line in store.numbered_lines(path):
                s = store.decode_line(path, number, line, decode, SAMPLE_LINE)
                out.setdefault(s.source, []).append(s)
        except RecursionError:
            raise RunDirError(path, "nested too deeply to read", number, SAMPLE_LINE) from None
        for series in out.values():
            series.sort(key=lambda s: s.t)  # stable: samples of one instant keep their order
        return out

    def _optional(self, name: str, struct: type[T], expected: str) -> list[T] | None:
        """An optional file's lines in order, or None when the run has no such file."""
        path = self.file(name)
        if not path.exists() and not path.is_symlink():
            return None
        decode = msgspec.json.Decoder(struct).decode
        out: list[T] = []
        number = 0
        try:
            for number, line in store.numbered_lines(path):
                out.append(store.decode_line(path, number, line, decode, expected))
        except RecursionError:
            raise RunDirError(path, "nested too deeply to read", number, expected) from None
        return out

    def changes(self) -> Iterator[Change] | None:
        """analytics.jsonl's lines decoded one at a time, in the consumer's order (a `type` that is not
        the format's is a RunDirError naming the line), or None when the run has no such file."""
        path = self.file(store.ANALYTICS)
        if not path.exists() and not path.is_symlink():
            return None
        return self._changes(path)

    def _changes(self, path: Path) -> Iterator[Change]:
        decode = msgspec.json.Decoder(Change).decode
        number = 0
        try:
            for number, line in store.numbered_lines(path):
                c = store.decode_line(path, number, line, decode, CHANGE_LINE)
                if c.type not in CHANGE_TYPES:
                    raise RunDirError(path, f"type: got {c.type!r}", number, CHANGE_LINE)
                yield c
        except RecursionError:
            raise RunDirError(path, "nested too deeply to read", number, CHANGE_LINE) from None

    def rows(self) -> Iterator[_Row]:
        """store.jsonl's rows, decoded one at a time (the columns keep only hashes)."""
        path = self.file(store.STORE)
        decode = msgspec.json.Decoder(_Row).decode
        for number, line in store.numbered_lines(path):
            yield store.decode_line(path, number, line, decode, STORE_LINE)

    @cached_property
    def telemetry(self) -> list[Summary] | None:
        """telemetry.jsonl's summaries in the order they were read, or None when the run has no such
        file (a system that publishes no summaries: the telemetry check is not run)."""
        return self._optional(store.TELEMETRY, Summary, SUMMARY_LINE)

    def traces(self, hashes: Iterable[int]) -> dict[str, Trace]:
        """Every line about the cids with these hashes, by real cid: a second pass over the three
        files that decodes in full only the lines of those cids."""
        wanted = set(int(h) for h in hashes)
        out: dict[str, Trace] = {}
        if not wanted:
            return out
        cid_only = msgspec.json.Decoder(_Cid).decode
        full = msgspec.json.Decoder().decode
        for name, kind in ((store.HISTORY, "ops"), (store.STREAM, "messages"), (store.STORE, "rows")):
            path = self.file(name)
            number = 0
            try:
                for number, line in store.numbered_lines(path):  # noqa: B007 (named when nested too deep)
                    cid = cid_only(line).cid
                    if cid is not None and hash(cid) in wanted:
                        op = store.decode_line(path, number, line, full, "a JSON object")
                        getattr(out.setdefault(cid, Trace(cid)), kind).append(op)
            except RecursionError:
                raise RunDirError(path, "nested too deeply to read", number) from None
        return out
