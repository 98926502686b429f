"""A synthetic, consistent and valid run directory (../shared/RUN-FORMAT.md, docs/run-format.md)
of any size, for measuring the checker: `python bench/rundir_gen.py DIR --lines N --seed S`.

It writes scenario.json, history.jsonl (N lines, rounded down to an even number), stream.jsonl,
store.jsonl, samples.jsonl and analytics.jsonl, plus rundir.json (what was asked and what was written; the
checker ignores it). It streams: memory stays constant whatever N, so 10,000,000 lines are fine.

What the run looks like, so that every checker finds it valid:

- 8 clients (`c0`..`c7`), each doing one intent at a time against a random agent of three,
  with a short think time between them: about 300 intents/s, interleaved in time as the
  harness's load records them (invoke, then the completion; the lines of the 8 clients mix).
- Outside faults: 99.6 % `ok committed` with `stream_seq` and `quorum_ms` (quorum 1 to 7 ms,
  invoke-to-committed under 15 ms but for a 0.3 % tail of tens of ms), 0.3 % `fail aborted`
  ("no quorum in time", after 80 ms), 0.05 % `ok pending-commit` (replayed at once), and
  0.02 % `info` (a 2 s client timeout), half of whose cids land in the stream.
- `min(6, N // 150000)` faults (or `--faults`), spread evenly, each with a nemesis start
  (`fault_id`, `scheduled`, `target`) and stop, cycling through four kinds that all show
  effects inside their window: `outage` of nats for 60 s (every accepted intent is
  `pending-commit` and buffered by its agent, up to `buffer_cap`, then `fail rejected`; the
  buffers replay into the stream at the stop), a `partition` isolating agent-1 (its intents
  abort), `latency` on every agent link (quorum 35 to 80 ms, some aborts) and a `crash` of
  agent-3 (its intents end `info`, never landing; it has no samples meanwhile).
- stream.jsonl: one message per cid that landed (accepted, or `info` that landed), seq 1, 2, ...
  in commit order, as the harness reads it (`seq`, `subject`, `msg_id`, then the body:
  `cid`, `key`, `value`, `proposer`, `decided_at`).
- store.jsonl: one row per stream message (`cid`, `key`, `value`, `stream_seq`), in an order
  shuffled within a window of 4096 rows (SurrealDB returns rows in no particular order).
- analytics.jsonl (topology.analytics: true): an `applied` line per store row, in stream order,
  150 ms after the message (`versionstamp`: SurrealDB 3's form, the write's Unix ms above 16 bits),
  then a `view` line per key (64) holding its last message: one line per row, as a real
  consumer's log has, and a per-key dict of 64 entries is all it keeps (memory stays constant).
- samples.jsonl: each second, one sample per agent (buffer depth within the cap and 0 at the
  end, rss and fds steady with noise) and one of jetstream (its message count, a small
  consumer backlog); a last sample of each after the last operation.

Lines are made with f-strings, not json.dumps: a completion line took 1.2 µs that way against
7.8 µs as json.dumps of a dict (measured on 2026-11-30, 2 cores). 1,000,000 history lines take
about 5 s to write, in 23 MiB of memory. `--verify` reads the directory back and checks all of
the above without harness/checkers (its memory grows with N)."""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
import time
from pathlib import Path

VERSION = 3  # bump when the output changes: bench/checker_speed.py regenerates its cache
SUBJECT = "root.solar.command.sentiment.set"
AGENTS = ("agent-1", "agent-2", "agent-3")
CLIENTS = 8
BUFFER_CAP = 256
KEYS = 64
EPOCH = 1796076000.0  # 2026-11-30T22:00:00Z: decided_at is wall-clock time in the stream
RUN_ID = "20261130-220000-5eb0c1"
CHUNK = 4096  # lines buffered per file before a write
SHUFFLE = 4096  # store rows shuffled within this window

HEALTHY, OUTAGE, PARTITION, LATENCY, CRASH = 0, 1, 2, 3, 4
KINDS = (OUTAGE, PARTITION, LATENCY, CRASH)
AGENT_LINKS = [f"{a}>{b}" for a in AGENTS for b in AGENTS if a != b]
FAULTS = {
    OUTAGE: (
        "outage",
        60.0,
        {"node": "nats", "mode": "refuse", "links": ["orchestrator>nats", "projector>nats"]},
    ),
    PARTITION: (
        "partition",
        20.0,
        {
            "groups": [["agent-1"], ["agent-2", "agent-3"]],
            "mode": "blackhole",
            "links": ["agent-1>agent-2", "agent-1>agent-3", "agent-2>agent-1", "agent-3>agent-1"],
            "direction": "both",
        },
    ),
    LATENCY: ("latency", 20.0, {"links": AGENT_LINKS, "latency_ms": 50, "jitter_ms": 20}),
    CRASH: ("crash", 20.0, {"node": "agent-3", "mode": "kill"}),
}

# Outcome codes, decided at the invoke.
COMMITTED, PENDING, ABORTED, REJECTED, INFO_LANDS, INFO_LOST, CONNECT = range(7)

# Event kinds in the heap; at equal times a stop goes before an invoke, a sample last.
EV_DONE, EV_STOP, EV_START, EV_INVOKE, EV_SAMPLE = range(5)


def scenario(seed: int) -> dict:
    return {
        "name": "bench-synthetic",
        "description": "synthetic run directory written by bench/rundir_gen.py",
        "seed": seed,
        "budgets": {"intent_ms": 100, "commit_ms": 500, "recovery_grace_s": 5},
        "invariants": {"stream_exactly_once": True},
        "topology": {"agents": len(AGENTS), "buffer_cap": BUFFER_CAP, "analytics": True},
        "stream": {"max_msgs": None, "max_bytes": None, "max_age_s": None, "duplicate_window_s": 120},
        "expect": {"min_committed": 0, "aborts": "allowed", "rejections": "allowed", "drained_within_s": 15},
    }


class Out:
    """A file written in chunks of lines."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "w", buffering=1 << 20)
        self.lines: list[str] = []
        self.n = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.n += len(self.lines)
        self.f.write("".join(self.lines))
        self.lines.clear()

    def close(self) -> None:
        self.flush()
        self.f.close()


def generate(run_dir: Path, lines: int, seed: int = 0, faults: int | None = None) -> dict:
    """Write the run directory; returns what rundir.json holds (counts of what was written)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "rundir.json").unlink(missing_ok=True)  # written last: its presence means complete
    rng = random.Random(seed)
    rnd = rng.random
    n_faults = min(6, lines // 150_000) if faults is None else faults
    n_ops = max(0, (lines - 2 * n_faults) // 2)
    (run_dir / "scenario.json").write_text(json.dumps(scenario(seed), indent=1) + "\n")
    hist = Out(run_dir / "history.jsonl")
    stream = Out(run_dir / "stream.jsonl")
    store = Out(run_dir / "store.jsonl")
    samples = Out(run_dir / "samples.jsonl")
    analytics = Out(run_dir / "analytics.jsonl")
    H, S, R, P, A = hist.add, stream.add, store.add, samples.add, analytics.add
    view: dict[str, str] = {}  # per key, its last message as a view line's fields
    prefix = f"{RUN_ID}-s{seed}"
    names = ("committed", "pending-commit", "aborted", "rejected", "info-landed", "info-lost", "info-connect")
    counts = dict.fromkeys(names, 0)

    shuffle: list[str] = []

    def land(cid: str, key: str, value: int, agent: str, t: float) -> int:
        nonlocal seq
        seq += 1
        S(
            f'{{"seq":{seq},"subject":"{SUBJECT}","msg_id":"{cid}","cid":"{cid}","key":"{key}",'
            f'"value":{value},"proposer":"{agent}","decided_at":{EPOCH + t:.6f}}}\n'
        )
        row = f'{{"cid":"{cid}","key":"{key}","value":{value},"stream_seq":{seq}}}\n'
        stamp = (int((EPOCH + t + 0.05) * 1000) << 16) | (seq & 0xFFFF)
        fields = f'"cid":"{cid}","key":"{key}","value":{value},"stream_seq":{seq}'
        A(f'{{"t":{t + 0.15:.6f},"type":"applied","versionstamp":{stamp},{fields}}}\n')
        view[key] = fields
        if len(shuffle) < SHUFFLE:
            shuffle.append(row)
        else:
            i = int(rnd() * SHUFFLE)
            R(shuffle[i])
            shuffle[i] = row
        return seq

    seq = 0
    state = HEALTHY  # the active fault's kind
    fault_ix = 0
    fault_at = [(k + 1) * n_ops // (n_faults + 1) for k in range(n_faults)]  # op index starting each
    next_fault = fault_at[0] if n_faults else -1
    buffers: dict[str, list[tuple[str, str, int]]] = {a: [] for a in AGENTS}
    reserved = dict.fromkeys(AGENTS, 0)  # buffered or on their way to the buffer (vs the cap)
    drains: dict[str, tuple[float, int]] = {a: (0.0, 0) for a in AGENTS}  # (from t, how many)
    crashed: str | None = None
    rss = {a: 88_000_000 + 3_500_000 * i for i, a in enumerate(AGENTS)}

    # Per client: the operation in flight.
    c_cid = [""] * CLIENTS
    c_agent = [""] * CLIENTS
    c_key = [""] * CLIENTS
    c_value = [0] * CLIENTS
    c_outcome = [0] * CLIENTS
    c_q = [0.0] * CLIENTS
    c_reserved = [False] * CLIENTS  # a slot of its agent's buffer is reserved for it
    processes = [f"c{i}" for i in range(CLIENTS)]

    heap: list[tuple[float, int, int, int]] = []
    tie = 0
    for c in range(CLIENTS):
        tie += 1
        heap.append((0.05 + 0.004 * c + 0.002 * rnd(), EV_INVOKE, tie, c))
    heap.append((1.0, EV_SAMPLE, 0, 0))
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop

    issued = 0
    in_flight = 0
    faults_open = 0
    t = 0.0
    while heap:
        t, ev, _, c = pop(heap)
        if ev == EV_DONE:
            in_flight -= 1
            cid, agent, key, value, o = c_cid[c], c_agent[c], c_key[c], c_value[c], c_outcome[c]
            head = f'{{"t":{t:.6f},"process":"{processes[c]}","f":"intent","cid":"{cid}","agent":"{agent}",'
            counts[names[o]] += 1
            if o == COMMITTED:
                s = land(cid, key, value, agent, t)
                H(f'{head}"type":"ok","outcome":"committed","stream_seq":{s},"quorum_ms":{c_q[c]:.1f}}}\n')
            elif o == PENDING and state == OUTAGE and not c_reserved[c] and reserved[agent] >= BUFFER_CAP:
                # invoked before the outage, buffered after it began, and the buffer is full by now
                H(f'{head}"type":"fail","outcome":"rejected","reason":"buffer full"}}\n')
                counts["pending-commit"] -= 1
                counts["rejected"] += 1
            elif o == PENDING:
                H(f'{head}"type":"ok","outcome":"pending-commit","quorum_ms":{c_q[c]:.1f}}}\n')
                if state == OUTAGE:
                    if not c_reserved[c]:
                        reserved[agent] += 1
                    buffers[agent].append((cid, key, value))
                else:  # the replay finds NATS up: it lands now
                    land(cid, key, value, agent, t + 0.2)
            elif o == ABORTED:
                H(f'{head}"type":"fail","outcome":"aborted","reason":"no quorum in time"}}\n')
            elif o == REJECTED:
                H(f'{head}"type":"fail","outcome":"rejected","reason":"buffer full"}}\n')
            elif o == CONNECT:
                H(f'{head}"type":"info","error":"ConnectError: All connection attempts failed"}}\n')
            else:
                H(f'{head}"type":"info","error":"ReadTimeout: "}}\n')
                if o == INFO_LANDS:
                    land(cid, key, value, agent, t - 1.5)
            if issued < n_ops:
                tie += 1
                push(heap, (t + 0.004 + 0.022 * rnd(), EV_INVOKE, tie, c))
            continue
        if ev == EV_INVOKE:
            if issued >= n_ops:
                continue  # every operation is out: this client is done
            i = issued
            issued += 1
            if i == next_fault:
                tie += 1
                push(heap, (t + 0.0005, EV_START, tie, fault_ix))
                fault_ix += 1
                next_fault = fault_at[fault_ix] if fault_ix < n_faults else -1
            cid = f"{prefix}-{i:06d}"
            u = rnd()
            agent = AGENTS[int(u * 3)]
            key = f"k{int(rnd() * KEYS)}"
            value = int(rnd() * 2000) - 1000
            H(
                f'{{"t":{t:.6f},"process":"{processes[c]}","f":"intent","cid":"{cid}","agent":"{agent}",'
                f'"type":"invoke","key":"{key}","value":{value}}}\n'
            )
            u = rnd()
            q = 0.8 + 6.0 * u * u  # quorum_ms, healthy
            if rnd() < 0.003:
                q += 10.0 + 40.0 * rnd()
            lat = (q + 1.5 + 5.0 * rnd()) / 1000.0
            o = COMMITTED
            buffered = False
            u = rnd()
            if state == HEALTHY:
                if u < 0.0002:
                    o = INFO_LANDS if u < 0.0001 else INFO_LOST
                elif u < 0.0032:
                    o, lat = ABORTED, 0.080 + 0.004 * rnd()
                elif u < 0.0037:
                    o, lat = PENDING, 0.400 + 0.01 * rnd()
            elif state == OUTAGE:
                if u < 0.005:
                    o = INFO_LOST
                elif reserved[agent] < BUFFER_CAP:
                    o, lat = PENDING, 0.400 + 0.01 * rnd()
                    reserved[agent] += 1
                    buffered = True
                else:
                    o, lat = REJECTED, 0.001 + 0.002 * rnd()
            elif state == PARTITION:
                if agent == "agent-1":
                    o, lat = ABORTED, 0.080 + 0.004 * rnd()
                elif u < 0.002:
                    o = INFO_LANDS if u < 0.001 else INFO_LOST
                else:
                    q += 2.0 * rnd()
                    lat += 0.002
            elif state == LATENCY:
                q = 35.0 + 50.0 * rnd()
                if q > 80.0:
                    o, lat = ABORTED, 0.080 + 0.004 * rnd()
                else:
                    lat = (q + 55.0 + 20.0 * rnd()) / 1000.0  # the commit crosses a slow link too
            elif state == CRASH and agent == crashed:
                o, lat = CONNECT, 0.001 + 0.001 * rnd()
            if o == INFO_LANDS or o == INFO_LOST:
                lat = 2.0
            c_cid[c], c_agent[c], c_key[c], c_value[c], c_outcome[c], c_q[c] = cid, agent, key, value, o, q
            c_reserved[c] = buffered
            in_flight += 1
            tie += 1
            push(heap, (t + lat, EV_DONE, tie, c))
            continue
        if ev == EV_SAMPLE:
            ts = f"{t:.3f}"
            for a in AGENTS:
                if a == crashed:
                    continue  # a crashed agent answers no /metrics: the gap is the evidence
                if state == OUTAGE:
                    depth = len(buffers[a])
                else:
                    since, n = drains[a]
                    depth = max(0, n - int(250 * (t - since))) if n else 0
                assert depth <= BUFFER_CAP, f"generator bug: {a}'s buffer holds {depth} at t={t}"
                P(
                    f'{{"t": {ts}, "source": "{a}", "buffer_depth": {depth}, "buffer_cap": {BUFFER_CAP}, '
                    f'"rss_bytes": {rss[a] + 4096 * int(rnd() * 100)}, "open_fds": {29 + int(rnd() * 4)}}}\n'
                )
            P(
                f'{{"t": {ts}, "source": "jetstream", "stream_msgs": {seq}, "stream_bytes": {seq * 214}, '
                f'"consumer_num_pending": {int(rnd() * 4)}, "consumer_num_ack_pending": {int(rnd() * 2)}}}\n'
            )
            if issued < n_ops or in_flight or faults_open:  # else that was the last word
                push(heap, (t + 1.0, EV_SAMPLE, 0, 0))
            continue
        # nemesis: c is the fault's number
        kind = KINDS[c % len(KINDS)]
        name, duration, target = FAULTS[kind]
        fid = f"f{c + 1}"
        if ev == EV_START:
            faults_open += 1
            state = kind
            if kind == CRASH:
                crashed = "agent-3"
            late = 0.002 + 0.02 * rnd()
            target_json = json.dumps(target, separators=(",", ":"))
            H(
                f'{{"t":{t:.6f},"process":"nemesis","type":"info","f":"start","fault":"{name}",'
                f'"fault_id":"{fid}","scheduled":{t - late:.3f},"target":{target_json}}}\n'
            )
            tie += 1
            push(heap, (t + duration, EV_STOP, tie, c))
        else:
            faults_open -= 1
            state = HEALTHY
            crashed = None
            H(
                f'{{"t":{t:.6f},"process":"nemesis","type":"info","f":"stop","fault":"{name}",'
                f'"fault_id":"{fid}"}}\n'
            )
            if kind == OUTAGE:  # NATS is back: every buffer replays, in a burst
                for a in AGENTS:
                    drains[a] = (t, len(buffers[a]))
                    for cid, key, value in buffers[a]:
                        land(cid, key, value, a, t + 0.05)
                    buffers[a].clear()
                    reserved[a] = 0
    rng.shuffle(shuffle)
    for row in shuffle:
        R(row)
    for key in sorted(view):
        A(f'{{"t":{t + 1.0:.6f},"type":"view",{view[key]}}}\n')
    for f in (hist, stream, store, samples, analytics):
        f.close()
    info = {
        "generator": "bench/rundir_gen.py",
        "version": VERSION,
        "lines_asked": lines,
        "seed": seed,
        "faults": n_faults,
        "history_lines": hist.n,
        "stream_lines": stream.n,
        "store_lines": store.n,
        "samples_lines": samples.n,
        "analytics_lines": analytics.n,
        "duration_s": round(t, 3),
        "outcomes": counts,
    }
    (run_dir / "rundir.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def verify(run_dir: Path) -> dict:
    """Read the directory back and check, independently of harness/checkers, that it is what the
    docstring promises: consistent, within budgets, every fault with effects. Raises AssertionError.
    Not constant memory (a dict per cid): for sizes up to a few million lines."""
    sc = json.loads((run_dir / "scenario.json").read_text())
    grace = sc["budgets"]["recovery_grace_s"]
    ops: dict[str, dict] = {}
    faults: dict[str, list[float]] = {}
    last_t = -1.0
    with open(run_dir / "history.jsonl", "rb") as f:
        for n, line in enumerate(f, 1):
            op = json.loads(line)
            assert op["t"] >= last_t, f"history:{n}: time goes back"
            last_t = op["t"]
            if op["process"] == "nemesis":
                if op["f"] == "start":
                    assert op["fault_id"] not in faults and op["scheduled"] <= op["t"], n
                    faults[op["fault_id"]] = [op["t"], math.inf]
                else:
                    assert faults[op["fault_id"]][1] == math.inf, n
                    faults[op["fault_id"]][1] = op["t"]
            elif op["type"] == "invoke":
                assert op["cid"] not in ops, f"history:{n}: cid invoked twice"
                ops[op["cid"]] = op
            else:
                inv = ops[op["cid"]]
                assert (
                    "done" not in inv and inv["process"] == op["process"] and inv["agent"] == op["agent"]
                ), n
                inv["done"] = op
                assert op["type"] in ("ok", "fail", "info"), n
                if op["type"] == "ok":
                    assert op["outcome"] in ("committed", "pending-commit"), n
                    assert ("stream_seq" in op) == (op["outcome"] == "committed"), n
                elif op["type"] == "fail":
                    assert op["outcome"] in ("aborted", "rejected"), n
    assert all("done" in op for op in ops.values()), "an invoke without completion"
    stream: dict[str, dict] = {}
    with open(run_dir / "stream.jsonl", "rb") as f:
        for n, line in enumerate(f, 1):
            m = json.loads(line)
            assert m["seq"] == n and m["msg_id"] == m["cid"] and m["cid"] not in stream, f"stream:{n}"
            op = ops[m["cid"]]
            assert op["done"]["type"] != "fail" and (m["key"], m["value"]) == (op["key"], op["value"]), n
            stream[m["cid"]] = m
    rows = 0
    seen: set[str] = set()
    with open(run_dir / "store.jsonl", "rb") as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            m = stream[r["cid"]]
            assert r["cid"] not in seen and (r["key"], r["value"], r["stream_seq"]) == (
                m["key"],
                m["value"],
                m["seq"],
            ), f"store:{n}"
            seen.add(r["cid"])
            rows += 1
    assert rows == len(stream), "store rows != stream messages"
    outcomes: dict[str, int] = {}
    windows = sorted(faults.values())
    unhealthy = [(a, b + grace) for a, b in windows]
    effects = dict.fromkeys(faults, 0)
    quorum: list[float] = []
    commit: list[float] = []
    for cid, op in ops.items():
        d = op["done"]
        name = d.get("outcome", d["type"])
        outcomes[name] = outcomes.get(name, 0) + 1
        if d["type"] == "ok":
            assert cid in stream, f"{cid}: accepted, not in the stream"
            if "stream_seq" in d:
                assert d["stream_seq"] == stream[cid]["seq"], cid
        for fid, (a, b) in faults.items():
            if a <= op["t"] <= b + grace and name != "committed":
                effects[fid] += 1
        if any(a <= op["t"] <= b for a, b in unhealthy):
            continue
        if d["type"] == "ok":
            quorum.append(d["quorum_ms"])
        if name == "committed":
            commit.append((d["t"] - op["t"]) * 1000)
    assert all(effects.values()), f"a fault without effect: {effects}"
    last: dict[str, dict] = {}
    cap = sc["topology"]["buffer_cap"]
    with open(run_dir / "samples.jsonl", "rb") as f:
        for n, line in enumerate(f, 1):
            s = json.loads(line)
            assert s.get("buffer_depth", 0) <= cap, f"samples:{n}: over the cap"
            last[s["source"]] = s
    assert all(s.get("buffer_depth", 0) == 0 for s in last.values()), "undrained"
    assert max(s["t"] for s in last.values()) >= last_t, "no sample after the last operation"
    applied: set[str] = set()
    with open(run_dir / "analytics.jsonl", "rb") as f:
        for n, line in enumerate(f, 1):
            a = json.loads(line)
            if a["type"] == "applied":
                assert a["cid"] in stream and a["cid"] not in applied, f"analytics:{n}: {a['cid']}"
                applied.add(a["cid"])
    assert len(applied) == len(stream), f"applied {len(applied)} of {len(stream)} rows"
    quorum.sort()
    commit.sort()
    p99q = quorum[int(0.99 * (len(quorum) - 1))] if quorum else 0.0
    p99c = commit[int(0.99 * (len(commit) - 1))] if commit else 0.0
    assert p99q <= sc["budgets"]["intent_ms"] and p99c <= sc["budgets"]["commit_ms"], (p99q, p99c)
    return {
        "ops": len(ops),
        "outcomes": outcomes,
        "stream": len(stream),
        "recovered": sum(1 for c, op in ops.items() if op["done"]["type"] == "info" and c in stream),
        "healthy_intent_p99_ms": round(p99q, 2),
        "healthy_commit_p99_ms": round(p99c, 2),
        "fault_effects": effects,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--lines", type=int, default=1_000_000, help="history lines (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--faults", type=int, default=None, help="default: min(6, lines // 150000)")
    ap.add_argument("--verify", action="store_true", help="read it back and check it (memory grows with N)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    info = generate(args.dir, args.lines, args.seed, args.faults)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(info))
    if args.verify:
        print(json.dumps({"verified": verify(args.dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
