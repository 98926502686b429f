"""Run directories built by hand (../shared/RUN-FORMAT.md), for the checker tests.

    run = RunDir(budgets={"commit_ms": 200})
    run.intent("c1", 1.0)                 # invoke, ok committed, its stream message and store row
    run.invoke("c2", 2.0); run.info("c2", 4.0)
    run.start("f1", 5.0, "partition"); run.stop("f1", 9.0)
    run.sample(10.0, "agent-1", buffer_depth=0, buffer_cap=256)
    path = run.write(tmp_path)

Every piece can also be written alone (`message`, `row`) to break one promise at a time. The
history is written in time order (stable: lines of one instant keep the order they were added)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import store

SUBJECT = "root.solar.command.sentiment.set"


class RunDir:
    def __init__(self, **scenario: Any) -> None:
        """`scenario` holds scenario.json's sections (budgets, invariants, topology, stream, expect);
        what it leaves out takes the format's defaults."""
        self.scenario: dict[str, Any] = {"name": "hand-made", "seed": 1, **scenario}
        self.history: list[dict[str, Any]] = []
        self.stream: list[dict[str, Any]] = []
        self.store: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.telemetry: list[dict[str, Any]] | None = None  # telemetry.jsonl, written when set
        self.analytics: list[dict[str, Any]] | None = None  # analytics.jsonl, written when set
        self.kv: dict[str, tuple[str, Any]] = {}
        self.next_seq = 1

    # client operations

    def invoke(
        self,
        cid: str,
        t: float,
        *,
        agent: str = "agent-1",
        process: str = "c1",
        key: str | None = None,
        value: Any = 1,
    ) -> RunDir:
        key = key if key is not None else f"k-{cid}"
        self.kv[cid] = (key, value)
        self.history.append(
            {
                "t": t,
                "process": process,
                "type": "invoke",
                "f": "intent",
                "cid": cid,
                "agent": agent,
                "key": key,
                "value": value,
            }
        )
        return self

    def ok(
        self,
        cid: str,
        t: float,
        *,
        outcome: str = "committed",
        stream_seq: int | None = None,
        quorum_ms: float | None = 5.0,
        agent: str = "agent-1",
        process: str = "c1",
    ) -> RunDir:
        op: dict[str, Any] = {
            "t": t,
            "process": process,
            "type": "ok",
            "f": "intent",
            "cid": cid,
            "agent": agent,
            "outcome": outcome,
        }
        if stream_seq is not None:
            op["stream_seq"] = stream_seq
        if quorum_ms is not None:
            op["quorum_ms"] = quorum_ms
        self.history.append(op)
        return self

    def fail(self, cid: str, t: float, *, outcome: str = "aborted", agent: str = "agent-1") -> RunDir:
        self.history.append(
            {
                "t": t,
                "process": "c1",
                "type": "fail",
                "f": "intent",
                "cid": cid,
                "agent": agent,
                "outcome": outcome,
            }
        )
        return self

    def info(self, cid: str, t: float, *, agent: str = "agent-1") -> RunDir:
        self.history.append(
            {
                "t": t,
                "process": "c1",
                "type": "info",
                "f": "intent",
                "cid": cid,
                "agent": agent,
                "error": "timeout",
            }
        )
        return self

    # what landed

    def message(self, cid: str | None, *, seq: int | None = None, key: Any = None, value: Any = None) -> int:
        """A stream message for the cid (by default its invoke's key and value); returns its seq."""
        if seq is None:
            seq = self.next_seq
        self.next_seq = max(self.next_seq, seq + 1)
        k, v = self.kv.get(cid or "", (f"k-{cid}", 1))
        self.stream.append(
            {
                "seq": seq,
                "subject": SUBJECT,
                "msg_id": cid,
                "cid": cid,
                "key": k if key is None else key,
                "value": v if value is None else value,
            }
        )
        return seq

    def row(self, cid: str, *, stream_seq: int | None, key: Any = None, value: Any = None) -> RunDir:
        k, v = self.kv.get(cid, (f"k-{cid}", 1))
        self.store.append(
            {
                "cid": cid,
                "key": k if key is None else key,
                "value": v if value is None else value,
                "stream_seq": stream_seq,
            }
        )
        return self

    def intent(
        self,
        cid: str,
        t: float,
        *,
        latency_ms: float = 10.0,
        outcome: str = "committed",
        quorum_ms: float | None = 5.0,
        agent: str = "agent-1",
        land: bool = True,
        project: bool = True,
    ) -> int | None:
        """A whole accepted intent: invoke, ok, and (unless told otherwise) its message and row.
        Returns its stream seq (None when it did not land)."""
        self.invoke(cid, t, agent=agent)
        seq = self.message(cid) if land else None
        self.ok(
            cid, t + latency_ms / 1000.0, outcome=outcome, stream_seq=seq, quorum_ms=quorum_ms, agent=agent
        )
        if land and project:
            self.row(cid, stream_seq=seq)
        return seq

    # the nemesis

    def start(
        self,
        fault_id: str,
        t: float,
        fault: str = "partition",
        *,
        evidence: dict[str, Any] | None = None,
        scheduled: float | None = None,
        target: Any = None,
    ) -> RunDir:
        op: dict[str, Any] = {
            "t": t,
            "process": "nemesis",
            "type": "info",
            "f": "start",
            "fault": fault,
            "fault_id": fault_id,
            "scheduled": t if scheduled is None else scheduled,
            "target": target or {"node": "agent-1"},
        }
        if evidence is not None:
            op["evidence"] = evidence
        self.history.append(op)
        return self

    def stop(
        self, fault_id: str, t: float, fault: str = "partition", *, evidence: dict[str, Any] | None = None
    ) -> RunDir:
        op = {"t": t, "process": "nemesis", "type": "info", "f": "stop", "fault": fault, "fault_id": fault_id}
        if evidence is not None:
            op["evidence"] = evidence
        self.history.append(op)
        return self

    # samples

    def sample(self, t: float, source: str, **metrics: Any) -> RunDir:
        self.samples.append({"t": t, "source": source, **metrics})
        return self

    def agents_drained(self, t: float, agents: tuple[str, ...] = ("agent-1",), cap: int = 256) -> RunDir:
        """One sample per agent at t showing an empty buffer."""
        for agent in agents:
            self.sample(t, agent, buffer_depth=0, buffer_cap=cap)
        return self

    def summary(self, start: float, end: float, **agents: dict[str, Any]) -> RunDir:
        """A telemetry summary of [start, end], received at `end`, for the agents named (agent_1=...
        for agent-1), each with the figures given."""
        self.telemetry = self.telemetry or []
        self.telemetry.append(
            {
                "t": end,
                "subject": "root.solar.telemetry.peer-health",
                "window_start": start,
                "window_end": end,
                "messages": len(agents),
                "agents": {name.replace("_", "-"): figures for name, figures in agents.items()},
            }
        )
        return self

    def applied(self, cid: str, t: float, *, versionstamp: int | None = None) -> RunDir:
        """The analytics consumer applied the change of cid's store row (its key, value and seq)."""
        row = next(r for r in self.store if r["cid"] == cid)
        self.analytics = self.analytics or []
        stamp = versionstamp if versionstamp is not None else 65536 * (len(self.analytics) + 1)
        self.analytics.append({"t": t, "type": "applied", "versionstamp": stamp, **row})
        return self

    def view(self, key: str, cid: str, value: Any, stream_seq: int) -> RunDir:
        self.analytics = self.analytics or []
        self.analytics.append(
            {"t": 99.0, "type": "view", "key": key, "value": value, "cid": cid, "stream_seq": stream_seq}
        )
        return self

    def gap(self, t: float, detail: str) -> RunDir:
        self.analytics = self.analytics or []
        self.analytics.append({"t": t, "type": "gap", "detail": detail})
        return self

    def write(self, parent: Path, name: str = "run") -> Path:
        path = Path(parent) / name
        path.mkdir(parents=True, exist_ok=True)
        store.write_json(path / store.SCENARIO, self.scenario)
        store.write_jsonl(path / store.HISTORY, sorted(self.history, key=lambda op: op["t"]))
        store.write_jsonl(path / store.STREAM, self.stream)
        store.write_jsonl(path / store.STORE, self.store)
        store.write_jsonl(path / store.SAMPLES, sorted(self.samples, key=lambda s: s["t"]))
        if self.telemetry is not None:
            store.write_jsonl(path / store.TELEMETRY, self.telemetry)
        if self.analytics is not None:
            store.write_jsonl(path / store.ANALYTICS, self.analytics)
        return path


def append_line(path: Path, name: str, line: str | dict[str, Any]) -> int:
    """Add one line (raw text, or an object as JSON) to a file of the run directory; returns its
    line number."""
    file = Path(path) / name
    text = line if isinstance(line, str) else json.dumps(line)
    with open(file, "a") as f:
        f.write(text + "\n")
    return len(file.read_text().splitlines())


def valid_run() -> RunDir:
    """Three committed intents and the agents drained: a directory every checker finds valid."""
    run = RunDir()
    for i in range(3):
        run.intent(f"ok-{i}", 1.0 + i)
    run.agents_drained(5.0)
    return run
