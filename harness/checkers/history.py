"""The history file (docs/run-format.md, "history.jsonl") read in one streaming pass into compact
facts: a row of numpy columns per correlation id (its outcome, seq, times), and the faults with
their windows. `Run.history` calls `read_history` once for every checker.

A line the harness could not have written (no t, a completion before its invoke, a stop before its
start) makes the history malformed; what the agent answered wrongly on one op is that op's
problem, kept in `History.broken` for the expectations check (docs/run-format.md, "Operations")."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from harness import store
from harness.store import RunDirError

# What became of a client operation, as a code in the history's columns.
PENDING, COMMITTED, PENDING_COMMIT, ABORTED, REJECTED, FAILED, INFO = range(7)
NOT_INVOKED = -1
ACCEPTED = (COMMITTED, PENDING_COMMIT)  # `ok`
REFUSED = (ABORTED, REJECTED, FAILED)  # `fail`: definitely not applied
UNKNOWN = (PENDING, INFO)  # `info`, or an invoke the history never completed
_OK = {"committed": COMMITTED, "pending-commit": PENDING_COMMIT}
_FAIL = {"aborted": ABORTED, "rejected": REJECTED}


class _Op(msgspec.Struct):
    """One history line: a client operation or a nemesis event (unknown fields are ignored)."""

    t: float
    type: str
    process: str | None = None
    f: str | None = None
    cid: str | None = None
    outcome: str | None = None
    stream_seq: int | None = None
    quorum_ms: float | None = None
    fault: str | None = None
    fault_id: str | None = None
    scheduled: float | None = None
    target: Any = None
    evidence: dict[str, Any] | None = None
    contract: Any = None  # the load's word that the agent's answer broke the contract (what, how)


class _LooseOp(_Op):
    """The same line when the agent's answer put a wrong type in a field it fills: that is the
    operation's problem, not the history's (an `expectation` anomaly), so the fields are taken as
    they come and judged one by one."""

    stream_seq: Any = None
    quorum_ms: Any = None


# JetStream numbers a stream's messages from 1 (0 means "no message"), and the readers refuse any
# seq below 1: NO_SEQ can stand for "absent" in the columns without a line being able to forge it.
NO_SEQ = 0
MAX_SEQ, SEQ_RANGE, valid_seq = store.MAX_SEQ, store.SEQ_RANGE, store.valid_seq


def _got(value: Any) -> str:
    """What a field held, in JSON's words, short."""
    if isinstance(value, bool) or value is None:
        return msgspec.json.encode(value).decode()
    if isinstance(value, int | float):
        return repr(value) if abs(value) < 1e21 else f"{value:.3g}"
    name = {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)
    text = msgspec.json.encode(value).decode()
    return f"{name} ({text[:40]}{'...' if len(text) > 40 else ''})" if isinstance(value, str) else name


def _broken(op: _Op) -> list[str]:
    """How a client completion's answer broke the contract: the load's own word (`contract`), or a
    stream_seq or quorum_ms of the wrong type or range (whose value is then ignored)."""
    out = []
    if op.contract is not None:
        text = op.contract if isinstance(op.contract, str) else msgspec.json.encode(op.contract).decode()
        out.append(text if len(text) <= 300 else text[:300] + "...")
    if op.stream_seq is not None and not valid_seq(op.stream_seq):
        out.append(f"stream_seq: got {_got(op.stream_seq)}, not {SEQ_RANGE}")
    q = op.quorum_ms
    if q is not None and not (type(q) in (int, float) and q >= 0):
        out.append(f"quorum_ms: got {_got(q)}, not a number of milliseconds >= 0")
    return out


HISTORY_LINE = "a history operation: t (number), type, and for a client op its cid (docs/run-format.md)"


@dataclass
class Fault:
    """One fault of the history: its start event, and its stop (None: active until the end)."""

    fault_id: str
    kind: str
    start: float
    stop: float | None
    scheduled: float | None = None
    target: Any = None
    evidence: dict[str, Any] | None = None

    @property
    def began(self) -> float:
        """When the nemesis set about it: the scheduled time when it is earlier than `start` (a fault
        of several parts bites part by part before the last one takes effect), else `start`."""
        return self.start if self.scheduled is None else min(self.start, self.scheduled)

    def until(self, end: float) -> float:
        return self.stop if self.stop is not None else end


@dataclass
class Ops:
    """The client operations, one row per correlation id, in invoke order."""

    cid: np.ndarray  # int64 hash of the cid
    code: np.ndarray  # int8: COMMITTED, ... INFO, PENDING (never completed)
    seq: np.ndarray  # int64 stream_seq of an `ok`, NO_SEQ when absent or not a seq
    invoked: np.ndarray  # float64 t of the invoke
    completed: np.ndarray  # float64 t of the completion, nan when none
    quorum_ms: np.ndarray  # float32, nan when absent


@dataclass(frozen=True)
class Broken:
    """A client operation whose answer broke the agent's contract (docs/run-format.md)."""

    cid: str
    t: float
    line: int
    what: str  # each field that broke it: what it got, what the contract allows


@dataclass
class History:
    ops: Ops
    faults: list[Fault]
    end: float  # the last t of the history
    broken: list[Broken] = field(default_factory=list)


def _loosely(path: Path, number: int, line: bytes, decode: Callable[[bytes], Any], loose: Callable) -> _Op:
    """A line the typed reader refused: a field the agent's answer fills may be of the wrong type, which
    is that operation's problem; any other damage is the line's own, named as the typed reader saw it."""
    try:
        return loose(line)
    except (msgspec.DecodeError, ValueError):
        return store.decode_line(path, number, line, decode, HISTORY_LINE)


def _nemesis(path: Path, number: int, op: _Op, starts: dict[str, Fault], faults: list[Fault]) -> None:
    """A nemesis line: a fault's start, or its stop (at or after its start: time runs forward)."""
    if op.f == "start" and op.fault_id:
        if op.fault_id in starts:
            raise RunDirError(path, f"fault {op.fault_id} started twice", number, "one start per fault_id")
        fault = Fault(op.fault_id, op.fault or "?", op.t, None, op.scheduled, op.target, op.evidence)
        starts[op.fault_id] = fault
        faults.append(fault)
    elif op.f == "stop" and op.fault_id:
        fault = starts.get(op.fault_id)
        if fault is None or fault.stop is not None:
            what = "stopped twice" if fault else "stopped before any start"
            raise RunDirError(path, f"fault {op.fault_id} {what}", number, "a start, then one stop")
        if op.t < fault.start:
            raise RunDirError(
                path,
                f"fault {op.fault_id} stopped at t={op.t:g}, before it started at t={fault.start:g}",
                number,
                "time to run forward: a stop at or after its start",
            )
        fault.stop = op.t
        if op.evidence:  # counted over the window (a disk fault's calls), beside the start's
            fault.evidence = {**(fault.evidence or {}), **op.evidence}


def read_history(path: Path) -> History:
    """Every line of the history, in one pass; RunDirError names the first malformed one."""
    hashes, codes, seqs = array("q"), array("b"), array("q")
    invoked, completed, quorum = array("d"), array("d"), array("f")
    open_ops: dict[str, int] = {}
    starts: dict[str, Fault] = {}
    faults: list[Fault] = []
    broken: list[Broken] = []
    end = 0.0
    nan = math.nan
    decode, loose = msgspec.json.Decoder(_Op).decode, msgspec.json.Decoder(_LooseOp).decode
    number = 0
    try:
        for number, line in store.numbered_lines(path):
            try:
                op = decode(line)
            except msgspec.ValidationError:
                op = _loosely(path, number, line, decode, loose)
            except (msgspec.DecodeError, ValueError):
                store.decode_line(path, number, line, decode, HISTORY_LINE)  # names what is wrong
                raise
            t = op.t
            if t > end:
                end = t
            if op.process == "nemesis":
                _nemesis(path, number, op, starts, faults)
                continue
            if op.f not in (None, "intent"):
                continue  # an operation of another kind: nothing here judges it
            cid = op.cid
            if cid is None:
                raise RunDirError(path, f"a client {op.type} without a cid", number, HISTORY_LINE)
            if op.type == "invoke":
                if cid in open_ops:
                    raise RunDirError(
                        path,
                        f"cid {cid} invoked again before it completed",
                        number,
                        "a unique cid per invoke",
                    )
                open_ops[cid] = len(hashes)
                hashes.append(hash(cid))
                codes.append(PENDING)
                seqs.append(NO_SEQ)
                invoked.append(t)
                completed.append(nan)
                quorum.append(nan)
                continue
            i = open_ops.pop(cid, None)
            if i is None:
                raise RunDirError(
                    path,
                    f"{op.type} of cid {cid} with no open invoke before it",
                    number,
                    "every completion after its invoke",
                )
            if t < invoked[i]:
                raise RunDirError(
                    path,
                    f"{op.type} of cid {cid} at t={t:g}, before its invoke at t={invoked[i]:g}",
                    number,
                    "time to run forward: a completion at or after its invoke",
                )
            seq, q = op.stream_seq, op.quorum_ms
            if (
                op.contract is not None
                or not (seq is None or (type(seq) is int and 0 < seq <= MAX_SEQ))
                or not (q is None or (type(q) is float and q >= 0))
            ) and (wrong := _broken(loose(line))):  # as written: a typed read made 3 of a 3.0
                broken.append(Broken(cid, t, number, "; ".join(wrong)))
                op.stream_seq = seq if valid_seq(seq) else None  # a wrong value is ignored, not guessed at
                op.quorum_ms = q if type(q) in (int, float) and q >= 0 else None
            if op.type == "ok":
                code = _OK.get(op.outcome or "")
                if code is None:
                    raise RunDirError(
                        path, f"ok with outcome {op.outcome!r}", number, "committed or pending-commit"
                    )
                if op.stream_seq is not None:
                    seqs[i] = op.stream_seq
                if op.quorum_ms is not None:
                    quorum[i] = op.quorum_ms
            elif op.type == "fail":
                code = _FAIL.get(op.outcome or "", FAILED)
            elif op.type == "info":
                code = INFO
            else:
                raise RunDirError(path, f"type {op.type!r}", number, "invoke, ok, fail or info")
            codes[i] = code
            completed[i] = t
    except RecursionError:
        raise RunDirError(path, "nested too deeply to read", number, HISTORY_LINE) from None
    ops = Ops(
        cid=np.frombuffer(hashes, dtype=np.int64),
        code=np.frombuffer(codes, dtype=np.int8),
        seq=np.frombuffer(seqs, dtype=np.int64),
        invoked=np.frombuffer(invoked, dtype=np.float64),
        completed=np.frombuffer(completed, dtype=np.float64),
        quorum_ms=np.frombuffer(quorum, dtype=np.float32),
    )
    return History(ops, faults, end, broken)
