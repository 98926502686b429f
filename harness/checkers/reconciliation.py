"""Reconciliation across the three places: what agents accepted (history), what JetStream holds
(stream.jsonl) and what SurrealDB stores (store.jsonl). Lost, unprojected, duplicated, phantom,
unknown, unsourced, mismatched intents, each by its cid (docs/run-format.md).

Two stages: numpy columns of cid hashes find the suspects of every rule at once; then the exact
rules (`judge_cid`, the one statement of each rule) run on the suspects' real lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import store
from harness.checkers.base import Anomaly, Checker, Result
from harness.checkers.run import ACCEPTED, NOT_INVOKED, REFUSED, UNKNOWN, Run, Settings, Trace
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
_MIX = np.uint64(0x9E3779B97F4A7C15)  # spreads (cid hash, seq) pairs over 64 bits


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


def _join(run: Run) -> Joined:
    ops, msgs, rows, s = run.history.ops, run.stream, run.store, run.settings
    cids = np.unique(np.concatenate([ops.cid, msgs.cid, rows.cid]))
    n = len(cids)
    op_ix = np.searchsorted(cids, ops.cid)
    msg_ix = np.searchsorted(cids, msgs.cid)
    row_ix = np.searchsorted(cids, rows.cid)
    code = np.full(n, NOT_INVOKED, dtype=np.int8)
    code[op_ix] = ops.code
    invokes = np.bincount(op_ix, minlength=n)
    in_stream = np.bincount(msg_ix, minlength=n)
    in_store = np.bincount(row_ix, minlength=n)
    min_seq = float(msgs.seq.min()) if len(msgs.seq) else float("inf")
    exempt = np.zeros(n, dtype=bool)
    if s.stream_limited:
        exempt[row_ix[(rows.seq >= 0) & (rows.seq < min_seq)]] = True

    accepted = np.isin(code, ACCEPTED)
    refused = np.isin(code, REFUSED)
    unknown = np.isin(code, UNKNOWN)
    landed = (in_stream + in_store) > 0
    suspect = (
        (invokes > 1)
        | (accepted & (in_stream == 0) & ~exempt)  # lost
        | ((accepted | unknown) & (in_stream > 0) & (in_store == 0))  # unprojected
        | ((in_stream > 1) & s.stream_exactly_once)  # stream-duplicate
        | (in_store > 1)  # store-duplicate
        | (refused & landed)  # phantom
        | ((code == NOT_INVOKED) & landed)  # unknown-cid
        | ((in_store > 0) & (in_stream == 0) & ~exempt)  # unsourced-write
        | ((in_store > 0) & (in_stream > 1))  # projection-mismatch: which message the row follows
    )
    # projection-mismatch: a row whose (key, value) differs from its cid's first message
    if len(msgs.cid):
        order = np.lexsort((msgs.seq, msgs.cid))
        first = order[np.r_[True, msgs.cid[order][1:] != msgs.cid[order][:-1]]]
        first_kv = np.zeros(n, dtype=np.int64)
        first_kv[msg_ix[first]] = msgs.kv[first]
        differs = (in_stream[row_ix] > 0) & (rows.kv != first_kv[row_ix])
        suspect[row_ix[differs]] = True
    # seq-mismatch: an ok's stream_seq that is no seq of a message with its cid
    with_seq = (ops.seq >= 0) & np.isin(ops.code, ACCEPTED) & (in_stream[op_ix] > 0)
    if with_seq.any():
        pairs = msgs.cid.view(np.uint64) * _MIX ^ msgs.seq.view(np.uint64)
        claimed = ops.cid[with_seq].view(np.uint64) * _MIX ^ ops.seq[with_seq].view(np.uint64)
        suspect[op_ix[with_seq][~np.isin(claimed, pairs)]] = True
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
        isinstance(r.get("stream_seq"), int) and r["stream_seq"] < min_seq for r in rows
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
            diffs = [
                f"{k} {row.get(k)!r} vs {msg.get(k)!r}" for k in ("key", "value") if row.get(k) != msg.get(k)
            ]
            if diffs:
                flag("projection-mismatch", f"store row vs stream seq {msg.get('seq')}: " + "; ".join(diffs))
    if kind == "ok" and isinstance(done.get("stream_seq"), int) and msgs:
        if done["stream_seq"] not in {m.get("seq") for m in msgs}:
            seqs = ", ".join(str(m.get("seq")) for m in msgs)
            flag(
                "seq-mismatch",
                f"answered stream_seq {done['stream_seq']}{_where(done)}; its messages: seq {seqs}",
            )
    return out


def check(run: Run) -> Result:
    j = joined(run)
    s = run.settings
    code = run.history.ops.code
    anomalies: list[Anomaly] = []
    traces = run.traces(j.suspects)
    for cid in sorted(traces):
        anomalies += judge_cid(traces[cid], s, j.min_seq, str(run.file(store.HISTORY)))
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
