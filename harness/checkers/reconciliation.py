"""Reconciliation across the three places: what agents accepted (history), what JetStream holds
(stream.jsonl) and what SurrealDB stores (store.jsonl). Lost, unprojected, duplicated, phantom,
unknown, unsourced, mismatched intents, each by its cid (docs/run-format.md).

Two stages: numpy columns of cid hashes find the suspects of every rule at once; then the exact
rules (`judge_cid`, the one statement of each rule) run on the suspects' real lines."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from harness import store
from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import ACCEPTED, NO_SEQ, NOT_INVOKED, REFUSED, UNKNOWN, Run, Trace, valid_seq
from harness.checkers.settings import Settings
from harness.store import RunDirError

KINDS = (
    "lost",
    "unprojected",
    "stream-duplicate",
    "store-duplicate",
    "phantom",
    "unknown-cid",
    "unsourced-write",
    "projection-mismatch",
    "seq-mismatch",
)


@dataclass
class Joined:
    """Per distinct cid hash (sorted): what the history made of it and where it landed."""

    code: np.ndarray  # int8: the op's outcome code, NOT_INVOKED when no operation invoked it
    invokes: np.ndarray  # how many invokes
    in_stream: np.ndarray  # messages in the stream
    in_store: np.ndarray  # rows in the store
    exempt: np.ndarray  # bool: judged by the store alone (retention, docs/run-format.md)
    suspects: np.ndarray  # the hashes some rule may flag
    min_seq: float  # the lowest seq in the stream, inf when empty

    @property
    def landed(self) -> np.ndarray:
        return (self.in_stream + self.in_store) > 0


def joined(run: Run) -> Joined:
    return run.memo("joined", lambda: _join(run))


def _groups(*columns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct values of the columns, sorted, and for each column the index of each of its
    values among them. One argsort does it all (np.unique and searchsorted cost several times more
    at ten million values); temporaries go as soon as they are used, to keep the peak low."""
    joined_values = np.concatenate(columns)
    order = np.argsort(joined_values, kind="stable")
    ordered = joined_values[order]
    del joined_values
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    group = np.empty(len(ordered), dtype=np.int32)
    group[order] = np.cumsum(first, dtype=np.int32) - 1
    del order
    distinct = ordered[first]
    del ordered, first
    bounds = np.cumsum([0, *(len(c) for c in columns)])
    return distinct, [group[bounds[i] : bounds[i + 1]] for i in range(len(columns))]


def _join(run: Run) -> Joined:
    ops, msgs, rows, s = run.history.ops, run.stream, run.store, run.settings
    cids, (op_ix, msg_ix, row_ix) = _groups(ops.cid, msgs.cid, rows.cid)
    n = len(cids)
    code = np.full(n, NOT_INVOKED, dtype=np.int8)
    code[op_ix] = ops.code
    invokes = np.bincount(op_ix, minlength=n).astype(np.int32)
    in_stream = np.bincount(msg_ix, minlength=n).astype(np.int32)
    in_store = np.bincount(row_ix, minlength=n).astype(np.int32)
    min_seq = float(msgs.seq.min()) if len(msgs.seq) else float("inf")
    exempt = np.zeros(n, dtype=bool)
    if s.stream_limited:
        exempt[row_ix[(rows.seq != NO_SEQ) & (rows.seq < min_seq)]] = True

    accepted = np.isin(code, ACCEPTED)
    unknown = np.isin(code, UNKNOWN)
    landed = (in_stream + in_store) > 0
    suspect = (
        (invokes > 1)
        | (accepted & (in_stream == 0) & ~exempt)  # lost
        | ((accepted | unknown) & (in_stream > 0) & (in_store == 0))  # unprojected
        | ((in_stream > 1) & s.stream_exactly_once)  # stream-duplicate
        | (in_store > 1)  # store-duplicate
        | (np.isin(code, REFUSED) & landed)  # phantom
        | ((code == NOT_INVOKED) & landed)  # unknown-cid
        | ((in_store > 0) & (in_stream == 0) & ~exempt)  # unsourced-write
        # With several messages, which one a row follows and which seq an answer names is for the
        # exact rules to say (projection-mismatch, seq-mismatch).
        | ((in_stream > 1) & ((in_store > 0) | accepted))
    )
    del accepted, unknown
    # With one message per cid: its (key, value) and seq, compared with its rows and its answer.
    only = np.zeros(n, dtype=np.int64)
    only[msg_ix] = msgs.kv
    single = in_stream[row_ix] == 1
    suspect[row_ix[single & (rows.kv != only[row_ix])]] = True  # projection-mismatch
    only[msg_ix] = msgs.seq
    claimed = (ops.seq != NO_SEQ) & (in_stream[op_ix] == 1)
    suspect[op_ix[claimed & (ops.seq != only[op_ix])]] = True  # seq-mismatch (codes: judge_cid)
    del only, single, claimed
    return Joined(code, invokes, in_stream, in_store, exempt, cids[suspect], min_seq)


def _client_ops(trace: Trace) -> list[dict[str, Any]]:
    return [op for op in trace.ops if op.get("process") != "nemesis" and op.get("f", "intent") == "intent"]


def _where(op: dict[str, Any]) -> str:
    by = f" by {op['agent']}" if op.get("agent") else ""
    return f"{by} at t={op.get('t', 0):g}"


def _places(trace: Trace) -> str:
    places = []
    if trace.messages:
        places.append("the stream (seq " + ", ".join(str(m.get("seq")) for m in trace.messages) + ")")
    if trace.rows:
        places.append(f"the store ({len(trace.rows)} row{'s' if len(trace.rows) > 1 else ''})")
    return " and ".join(places)


def same_json(a: Any, b: Any) -> bool:
    """Whether two decoded JSON values are the same value of the same JSON type: `true` is not `1`,
    `1.0` is not `1` and `"1"` is not `1` (the store keeps integers and floats apart), integers of
    any size compare exactly, an object's key order does not matter. -0.0 equals 0.0: they are one
    number under IEEE 754's comparison, and encoders commonly drop a zero's sign (a projection
    writing 0.0 for -0.0 kept the value; one writing 0 changed its type, and differs). Iterative:
    a value may nest as deep as the decoder allows, deeper than Python's recursion limit."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if type(x) is not type(y):
            return False
        if type(x) is dict:
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif type(x) is list:
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


_JSON_TYPES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
               dict: "an object", type(None): "null"}  # fmt: skip


def _differs(field: str, row: Any, msg: Any) -> str | None:
    """How the store row's field differs from its message's, in JSON (None when it does not)."""
    if same_json(row, msg):
        return None

    def text(v: Any) -> str:
        out = json.dumps(v)
        return out if len(out) <= 80 else out[:77] + "..."

    what = f"{field} {text(row)} vs {text(msg)}"
    if type(row) is not type(msg):
        what += f" ({_JSON_TYPES.get(type(row), '?')} vs {_JSON_TYPES.get(type(msg), '?')})"
    return what


def judge_cid(trace: Trace, s: Settings, min_seq: float, history: str = store.HISTORY) -> list[Anomaly]:
    """Every reconciliation rule of docs/run-format.md, on everything the run says about one cid."""
    cid, msgs, rows = trace.cid, trace.messages, trace.rows
    ops = _client_ops(trace)
    invokes = [op for op in ops if op.get("type") == "invoke"]
    if len(invokes) > 1:
        raise RunDirError(
            history, f"cid {cid} invoked {len(invokes)} times", expected="a unique cid per invoke"
        )
    done = next((op for op in reversed(ops) if op.get("type") != "invoke"), None)
    kind = done.get("type") if done else ("info" if invokes else None)
    exempt = s.stream_limited and any(
        valid_seq(r.get("stream_seq")) and r["stream_seq"] < min_seq for r in rows
    )
    out: list[Anomaly] = []

    def flag(anomaly_kind: str, detail: str) -> None:
        out.append(Anomaly(anomaly_kind, detail, cid))

    if not invokes and (msgs or rows):
        flag("unknown-cid", f"in {_places(trace)}, but no operation invoked it")
    if kind == "fail" and (msgs or rows):
        flag("phantom", f"{done.get('outcome', 'failed')}{_where(done)}, yet in {_places(trace)}")
    if kind == "ok" and not msgs and not exempt:
        what = f"accepted {done.get('outcome')}{_where(done)}, absent from the stream"
        flag("lost", what + (" (its row is in the store)" if rows else ""))
    if kind in ("ok", "info") and msgs and not rows:
        how = f"accepted {done.get('outcome')}{_where(done)}" if kind == "ok" else "outcome unknown (info)"
        flag("unprojected", f"{how}, in the stream (seq {msgs[0].get('seq')}), absent from the store")
    if len(msgs) > 1 and s.stream_exactly_once:
        seqs = ", ".join(str(m.get("seq")) for m in msgs)
        flag("stream-duplicate", f"{len(msgs)} messages in the stream (seq {seqs})")
    if len(rows) > 1:
        flag("store-duplicate", f"{len(rows)} rows in the store")
    if rows and not msgs and not exempt:
        seqs = ", ".join(str(r.get("stream_seq")) for r in rows)
        flag("unsourced-write", f"a store row (stream_seq {seqs}) with no message in the stream")
    for row in rows:
        msg = next((m for m in msgs if m.get("seq") == row.get("stream_seq")), None)
        msg = msg or min(msgs, key=lambda m: m.get("seq", 0), default=None)
        if msg is not None:
            diffs = [_differs(k, row.get(k), msg.get(k)) for k in ("key", "value")]
            diffs = [d for d in diffs if d]
            if diffs:
                flag("projection-mismatch", f"store row vs stream seq {msg.get('seq')}: " + "; ".join(diffs))
    if kind == "ok" and valid_seq(done.get("stream_seq")) and msgs:
        if done["stream_seq"] not in {m.get("seq") for m in msgs}:
            seqs = ", ".join(str(m.get("seq")) for m in msgs)
            flag(
                "seq-mismatch",
                f"answered stream_seq {done['stream_seq']}{_where(done)}; its messages: seq {seqs}",
            )
    return out


DEAD_LETTER = b'"dead-lettered"'  # the projector's log line for a message it will never write


def dead_letters(run: Run) -> dict[str, str]:
    """cid -> how the projector said it dead-lettered it (docs/contract.md, "Dead letters"), from its
    log beside the run's files (logs/projector*.log), when there is one. It only explains an
    anomaly in its detail: no verdict depends on a log."""
    out: dict[str, str] = {}
    for path in sorted(run.file(store.LOGS).glob("projector*.log")):
        for line in store.log_lines(path):  # a regular file only, each line bounded
            if DEAD_LETTER not in line:
                continue
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):  # a log is the SUT's text: an odd line explains nothing
                continue
            if not (isinstance(rec, dict) and rec.get("msg") == "dead-lettered"):
                continue
            if isinstance(cid := rec.get("cid"), str):
                cause, seq = rec.get("cause", "?"), rec.get("seq", "?")
                out[cid] = f"dead-lettered by the projector ({cause}, seq {seq}): {rec.get('reason')}"
    return out


def _explained(anomalies: list[Anomaly], run: Run) -> list[Anomaly]:
    """Each lost or unprojected intent the projector dead-lettered, with its word on why."""
    if not any(a.kind in ("lost", "unprojected") for a in anomalies):
        return anomalies  # the logs are read only when there is something to explain
    dead = dead_letters(run)
    return [
        replace(a, detail=f"{a.detail}; {dead[a.cid]}")
        if a.kind in ("lost", "unprojected") and a.cid in dead
        else a
        for a in anomalies
    ]


def check(run: Run) -> Result:
    j = joined(run)
    s = run.settings
    code = run.history.ops.code
    anomalies: list[Anomaly] = []
    traces = run.traces(j.suspects)
    for cid in sorted(traces):
        anomalies += judge_cid(traces[cid], s, j.min_seq, str(run.file(store.HISTORY)))
    anomalies = _explained(anomalies, run)
    unknown = np.isin(j.code, UNKNOWN)
    figures: dict[str, Any] = {
        "accepted": int(np.isin(code, ACCEPTED).sum()),
        "refused": int(np.isin(code, REFUSED).sum()),
        "unknown": int(np.isin(code, UNKNOWN).sum()),
        "recovered": int((unknown & j.landed).sum()),
        "stream_msgs": len(run.stream.cid) + run.stream.no_cid,
        "store_rows": len(run.store.cid) + run.store.no_cid,
        "retained_only_in_store": int(j.exempt.sum()),
    }
    for kind in KINDS:
        figures[kind] = sum(1 for a in anomalies if a.kind == kind)
    return Result(figures, anomalies)


CHECKER = Checker(
    "reconciliation",
    check,
    KINDS,
    waived=lambda s: "expect.reconciliation: none" if s.reconciliation == "none" else None,
)
