"""The history file (docs/run-format.md, "history.jsonl") read in one streaming pass into compact
facts: a row of numpy columns per correlation id (its outcome, seq, times), and the faults with
their windows. `Run.history` calls `read_history` once for every checker."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
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
    seq: np.ndarray  # int64 stream_seq of an `ok`, -1 when absent
    invoked: np.ndarray  # float64 t of the invoke
    completed: np.ndarray  # float64 t of the completion, nan when none
    quorum_ms: np.ndarray  # float32, nan when absent


@dataclass
class History:
    ops: Ops
    faults: list[Fault]
    end: float  # the last t of the history


def read_history(path: Path) -> History:
    hashes, codes, seqs = array("q"), array("b"), array("q")
    invoked, completed, quorum = array("d"), array("d"), array("f")
    open_ops: dict[str, int] = {}
    starts: dict[str, Fault] = {}
    faults: list[Fault] = []
    end = 0.0
    nan = math.nan
    decode = msgspec.json.Decoder(_Op).decode
    for number, line in store.numbered_lines(path):
        op = store.decode_line(path, number, line, decode, HISTORY_LINE)
        t = op.t
        if t > end:
            end = t
        if op.process == "nemesis":
            if op.f == "start" and op.fault_id:
                if op.fault_id in starts:
                    raise RunDirError(
                        path, f"fault {op.fault_id} started twice", number, "one start per fault_id"
                    )
                fault = Fault(op.fault_id, op.fault or "?", t, None, op.scheduled, op.target, op.evidence)
                starts[op.fault_id] = fault
                faults.append(fault)
            elif op.f == "stop" and op.fault_id:
                fault = starts.get(op.fault_id)
                if fault is None or fault.stop is not None:
                    what = "stopped twice" if fault else "stopped before any start"
                    raise RunDirError(path, f"fault {op.fault_id} {what}", number, "a start, then one stop")
                fault.stop = t
                if op.evidence:  # counted over the window (a disk fault's calls), beside the start's
                    fault.evidence = {**(fault.evidence or {}), **op.evidence}
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
            seqs.append(-1)
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
    ops = Ops(
        cid=np.frombuffer(hashes, dtype=np.int64),
        code=np.frombuffer(codes, dtype=np.int8),
        seq=np.frombuffer(seqs, dtype=np.int64),
        invoked=np.frombuffer(invoked, dtype=np.float64),
        completed=np.frombuffer(completed, dtype=np.float64),
        quorum_ms=np.frombuffer(quorum, dtype=np.float32),
    )
    return History(ops, faults, end)
