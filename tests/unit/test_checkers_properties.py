"""Properties of the checkers (../shared/RUN-FORMAT.md): a generated consistent run is valid with no
anomaly; one anomaly injected into it is found, with its cid where it has one, and nothing else is.

The generated runs mix every outcome (committed, pending-commit, aborted, rejected, info that did
or did not land, invokes never completed), several agents, stream seqs in any order from any
base, store rows in any order, faults (some open-ended) that each show a sign, and agent buffers
that fill only during faults and are empty after the last stop."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.checkers import judge
from tests.unit.rundirs import RunDir

AGENTS = ("agent-1", "agent-2", "agent-3")
SAMPLE_CAP = 256
OUTCOMES = (
    "committed",
    "pending-commit",
    "aborted",
    "rejected",
    "info-landed",
    "info-lost",
    "open-landed",
    "open-lost",
)
LANDS = {"committed", "pending-commit", "info-landed", "open-landed"}

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Generated:
    run: RunDir
    end: float  # the last t of the history
    landed: list[str] = field(default_factory=list)  # cids with one message and one row
    accepted: list[str] = field(default_factory=list)  # of those, the ok ones (with stream_seq)
    configured_cap: int | None = None


@st.composite
def consistent_runs(draw: st.DrawFn) -> Generated:
    configured_cap = draw(st.one_of(st.none(), st.integers(8, SAMPLE_CAP)))
    run = RunDir(
        invariants={"stream_exactly_once": draw(st.booleans())},
        topology={"agents": len(AGENTS), "buffer_cap": configured_cap},
    )
    gen = Generated(run, 0.0, configured_cap=configured_cap)
    n = draw(st.integers(0, 25))
    outcomes = draw(st.lists(st.sampled_from(OUTCOMES), min_size=n, max_size=n))
    t = 0.0
    landed_order: list[str] = []
    answers: dict[str, tuple[str, float, str]] = {}
    for i, outcome in enumerate(outcomes):
        t += draw(st.floats(0.01, 2.0))
        cid = f"01J{i:03d}" + draw(st.text("ABCDEFGHJKMNPQRSTVWXYZ0123456789", min_size=1, max_size=6))
        agent = draw(st.sampled_from(AGENTS))
        run.invoke(cid, round(t, 3), agent=agent, process=f"c{i % 4}", value=draw(st.integers(-5, 5)))
        done = round(t + draw(st.floats(0.001, 0.05)), 3)
        answers[cid] = (outcome, done, agent)
        if outcome in LANDS:
            landed_order.append(cid)
        gen.end = max(gen.end, done)
    # the stream: one message per landed cid, seqs consecutive from any base, in any commit order
    base = draw(st.integers(1, 1000))
    order = draw(st.permutations(landed_order))
    seqs = {cid: run.message(cid, seq=base + k) for k, cid in enumerate(order)}
    for cid, (outcome, done, agent) in answers.items():
        if outcome in ("committed", "pending-commit"):
            quorum = draw(st.floats(0.5, 20.0))
            run.ok(cid, done, outcome=outcome, stream_seq=seqs[cid], quorum_ms=quorum, agent=agent)
            gen.accepted.append(cid)
        elif outcome in ("aborted", "rejected"):
            run.fail(cid, done, outcome=outcome, agent=agent)
        elif outcome.startswith("info"):
            run.info(cid, done, agent=agent)
    gen.landed = list(order)
    for cid in draw(st.permutations(landed_order)):
        run.row(cid, stream_seq=seqs[cid])
    # faults, each with a sign (an aborted answer inside its window); the last may be open-ended
    windows: list[tuple[float, float]] = []
    for f in range(draw(st.integers(0, 2))):
        start = round(draw(st.floats(0.0, max(gen.end, 1.0))), 3)
        open_ended = draw(st.booleans()) and f == 0
        stop = None if open_ended else round(start + draw(st.floats(0.5, 5.0)), 3)
        kind = draw(st.sampled_from(("partition", "latency", "crash", "outage")))
        run.start(f"f{f}", start, kind)
        if stop is not None:
            run.stop(f"f{f}", stop, kind)
        run.invoke(f"sign-f{f}", start + 0.1).fail(f"sign-f{f}", start + 0.2)
        gen.end = max(gen.end, stop or 0.0, start + 0.2)
        windows.append((start, math.inf if stop is None else stop))
    # samples each second: buffers fill only during a fault, and are empty after it
    cap = configured_cap or SAMPLE_CAP
    for second in range(int(gen.end) + 3):
        during = any(a <= second <= b for a, b in windows)
        for agent in AGENTS:
            depth = draw(st.integers(0, cap)) if during and second <= gen.end else 0
            run.sample(float(second), agent, buffer_depth=depth, buffer_cap=SAMPLE_CAP)
        pending = draw(st.integers(0, 3))
        run.sample(float(second), "jetstream", stream_msgs=len(order), consumer_num_pending=pending)
    return gen


def judged(run: RunDir) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return judge(run.write(Path(tmp)))


def found(verdict: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((a["kind"], a.get("cid")) for a in verdict["anomalies"])


def assert_only(verdict: dict[str, Any], kind: str, cid: str | None) -> None:
    assert found(verdict) == [(kind, cid)], verdict["anomalies"]
    assert verdict["valid"] is False
    assert "unknown" not in [c["valid"] for c in verdict["checks"].values()], verdict["checks"]


@SETTINGS
@given(consistent_runs())
def test_a_consistent_run_is_valid(gen: Generated) -> None:
    v = judged(gen.run)
    assert v["anomalies"] == []
    assert v["valid"] is True, v["checks"]
    rec = v["checks"]["reconciliation"]
    assert rec["accepted"] == len(gen.accepted)
    assert rec["stream_msgs"] == rec["store_rows"] == len(gen.landed)
    assert rec["recovered"] == len(gen.landed) - len(gen.accepted)


@SETTINGS
@given(consistent_runs(), st.data())
def test_with_a_stream_limit_messages_that_left_the_stream_are_no_anomaly(
    gen: Generated, data: st.DataObject
) -> None:
    """Retention: a prefix of the stream gone, its cids are judged by the store alone."""
    run = gen.run
    run.scenario["stream"] = {"max_msgs": 100_000}
    seqs = sorted(m["seq"] for m in run.stream)
    cut = data.draw(st.integers(0, len(seqs)), label="messages gone")
    run.stream = [m for m in run.stream if m["seq"] not in seqs[:cut]]
    v = judged(run)
    assert v["anomalies"] == []
    assert v["valid"] is True
    # with none left, every row counts as below the lowest seq (an empty stream has aged out whole)
    assert v["checks"]["reconciliation"]["retained_only_in_store"] == cut


@SETTINGS
@given(consistent_runs(), st.data())
def test_without_exactly_once_a_stream_duplicate_is_no_anomaly(gen: Generated, data: st.DataObject) -> None:
    gen.run.scenario["invariants"] = {"stream_exactly_once": False}
    cid = _landed(gen, data, _time(gen, data))
    for _ in range(data.draw(st.integers(1, 3), label="redeliveries")):
        gen.run.message(cid, seq=_next_seq(gen.run))
    v = judged(gen.run)
    assert v["anomalies"] == []
    assert v["valid"] is True


# --- one anomaly injected -----------------------------------------------------------------------

INJECTED = "01JINJECTED"


def _fresh_landed(gen: Generated, t: float, ok: bool = True) -> str:
    """A new intent that landed (accepted when ok, else info), added to the run."""
    run = gen.run
    run.invoke(INJECTED, t)
    seq = run.message(INJECTED, seq=_next_seq(run))
    if ok:
        run.ok(INJECTED, t + 0.01, stream_seq=seq)
    else:
        run.info(INJECTED, t + 0.01)
    run.row(INJECTED, stream_seq=seq)
    return INJECTED


def _next_seq(run: RunDir) -> int:
    return max((m["seq"] for m in run.stream), default=0) + 1


def _landed(gen: Generated, data: st.DataObject, t: float, accepted: bool = False) -> str:
    pool = gen.accepted if accepted else gen.landed
    if pool and data.draw(st.booleans(), label="reuse a generated cid"):
        return data.draw(st.sampled_from(pool), label="cid")
    return _fresh_landed(gen, t)


def _time(gen: Generated, data: st.DataObject) -> float:
    return round(data.draw(st.floats(0.0, max(gen.end, 0.1)), label="t"), 3)


@SETTINGS
@given(consistent_runs(), st.data())
def test_lost(gen: Generated, data: st.DataObject) -> None:
    t = _time(gen, data)
    outcome = data.draw(st.sampled_from(("committed", "pending-commit")))
    seq = data.draw(st.one_of(st.none(), st.integers(1, 2000)))
    gen.run.invoke(INJECTED, t).ok(INJECTED, t + 0.01, outcome=outcome, stream_seq=seq)
    assert_only(judged(gen.run), "lost", INJECTED)


@SETTINGS
@given(consistent_runs(), st.data())
def test_unprojected(gen: Generated, data: st.DataObject) -> None:
    t, run = _time(gen, data), gen.run
    run.invoke(INJECTED, t)
    seq = run.message(INJECTED, seq=_next_seq(run))
    how = data.draw(st.sampled_from(("ok", "info", "never-completed")))
    if how == "ok":
        run.ok(INJECTED, t + 0.01, stream_seq=seq)
    elif how == "info":
        run.info(INJECTED, t + 0.01)
    assert_only(judged(run), "unprojected", INJECTED)


@SETTINGS
@given(consistent_runs(), st.data())
def test_stream_duplicate(gen: Generated, data: st.DataObject) -> None:
    gen.run.scenario["invariants"] = {"stream_exactly_once": True}
    cid = _landed(gen, data, _time(gen, data))
    gen.run.message(cid, seq=_next_seq(gen.run))
    assert_only(judged(gen.run), "stream-duplicate", cid)


@SETTINGS
@given(consistent_runs(), st.data())
def test_store_duplicate(gen: Generated, data: st.DataObject) -> None:
    cid = _landed(gen, data, _time(gen, data))
    row = next(r for r in gen.run.store if r["cid"] == cid)
    gen.run.store.insert(data.draw(st.integers(0, len(gen.run.store))), dict(row))
    assert_only(judged(gen.run), "store-duplicate", cid)


@SETTINGS
@given(consistent_runs(), st.data())
def test_phantom(gen: Generated, data: st.DataObject) -> None:
    t, run = _time(gen, data), gen.run
    outcome = data.draw(st.sampled_from(("aborted", "rejected")))
    run.invoke(INJECTED, t).fail(INJECTED, t + 0.01, outcome=outcome)
    seq = run.message(INJECTED, seq=_next_seq(run))
    if data.draw(st.booleans(), label="also in the store"):
        run.row(INJECTED, stream_seq=seq)
    assert_only(judged(run), "phantom", INJECTED)


@SETTINGS
@given(consistent_runs(), st.data())
def test_unknown_cid(gen: Generated, data: st.DataObject) -> None:
    run = gen.run
    seq = run.message(INJECTED, seq=_next_seq(run))
    if data.draw(st.booleans(), label="also in the store"):
        run.row(INJECTED, stream_seq=seq)
    assert_only(judged(run), "unknown-cid", INJECTED)


@SETTINGS
@given(consistent_runs(), st.data())
def test_unsourced_write(gen: Generated, data: st.DataObject) -> None:
    t, run = _time(gen, data), gen.run
    run.invoke(INJECTED, t)
    if data.draw(st.booleans(), label="info, else never completed"):
        run.info(INJECTED, t + 1.0)
    run.row(INJECTED, stream_seq=data.draw(st.one_of(st.none(), st.integers(1, 2000))))
    assert_only(judged(run), "unsourced-write", INJECTED)


@SETTINGS
@given(consistent_runs(), st.data())
def test_projection_mismatch(gen: Generated, data: st.DataObject) -> None:
    cid = _landed(gen, data, _time(gen, data))
    row = next(r for r in gen.run.store if r["cid"] == cid)
    what = data.draw(st.sampled_from(("key", "value")))
    row[what] = row[what] + "-x" if what == "key" else row[what] + data.draw(st.integers(1, 9))
    assert_only(judged(gen.run), "projection-mismatch", cid)


@SETTINGS
@given(consistent_runs(), st.data())
def test_seq_mismatch(gen: Generated, data: st.DataObject) -> None:
    cid = _landed(gen, data, _time(gen, data), accepted=True)
    ok = next(op for op in gen.run.history if op.get("cid") == cid and op["type"] == "ok")
    others = [m["seq"] for m in gen.run.stream if m["cid"] != cid]
    ok["stream_seq"] = data.draw(st.sampled_from([*others, _next_seq(gen.run) + 5]), label="wrong seq")
    assert_only(judged(gen.run), "seq-mismatch", cid)


@SETTINGS
@given(consistent_runs(), st.data())
def test_buffer_overflow(gen: Generated, data: st.DataObject) -> None:
    """Over the configured cap even when the sample reports a larger one; over the sample's own
    cap when none is configured."""
    cap = gen.configured_cap if gen.configured_cap is not None else SAMPLE_CAP
    depth = cap + data.draw(st.integers(1, 100))
    reported = max(depth + 1, SAMPLE_CAP) if gen.configured_cap is not None else SAMPLE_CAP
    agent = data.draw(st.sampled_from(AGENTS))
    gen.run.sample(0.5, agent, buffer_depth=depth, buffer_cap=reported)
    assert_only(judged(gen.run), "buffer-overflow", None)


@SETTINGS
@given(consistent_runs(), st.data())
def test_undrained(gen: Generated, data: st.DataObject) -> None:
    """Drained after the last fault in time, then refilled: only the last sample shows it."""
    last = max(s["t"] for s in gen.run.samples)
    cap = gen.configured_cap if gen.configured_cap is not None else SAMPLE_CAP
    agent = data.draw(st.sampled_from(AGENTS))
    gen.run.sample(last + 1.0, agent, buffer_depth=data.draw(st.integers(1, cap)), buffer_cap=SAMPLE_CAP)
    assert_only(judged(gen.run), "undrained", None)
