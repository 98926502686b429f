"""Does netsync's analytics role keep up with the store at 200 rows/s and beyond? (issue 30)

    .venv/bin/python bench/analytics_lag.py                              # rates 200,400,800, 30 s each
    .venv/bin/python bench/analytics_lag.py --rates 200 --seconds 10     # a quick look
    .venv/bin/python bench/analytics_lag.py --rates 800 --writers 1      # one writer, as the projector
    .venv/bin/python bench/analytics_lag.py --rates 200 --prefill 200000 # a large table first

The analytics leg alone, without NATS or agents (the soak on 2 cores cannot commit 200 intents/s).
Per rate, fresh: SurrealDB from the cached binary (`SurrealServer` of tests/integration/netsync_procs.py:
`surreal start ... surrealkv://DIR` on 127.0.0.1, the storage the harness gives SurrealDB in scenarios),
then `python -m netsync analytics` (tests/integration/analytics_procs.py's `Analytics`, its volume in the
run's folder, no NATS, `NETSYNC_ANALYTICS_POLL_MS` the contract's 200 unless `--poll-ms`), then writers
that write rate x seconds rows, open loop (row i due at t0 + i/rate, whether or not row i-1 is done),
each row netsync's own write: `netsync.surreal.SurrealConnection` (which defines the table with its
CHANGEFEED on connecting, as the projector's does) running `netsync.projection.UPSERT` with the
projector's parameters. Row i goes to writer i mod W; W is `--writers`, or by default one writer per
PER_WRITER rows/s: the projector is one writer, and one connection, a write at a time, waits a round
trip per row (one writer reached 507 rows/s of 800 asked on a quiet machine, 320 on a loaded one).
`--prefill N` puts N rows in the table, and waits for the role to apply them, before the timed writes.

A row's lag is the report's (docs/report.md; harness.report.plots.analytics_lag over applied_times):
the `t` of its `applied` line in the role's applied log minus the wall-clock ms of its versionstamp.
Catch-up is the last row's applied `t` minus the end of the writes (the last write answered). The role
keeps up at a rate when every row was applied and the lag p99 is under KEEPS_UP_P99_S. Exit 1 when a
row written was never applied within `--catchup-timeout`: a defect of the role, never hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # surreal_speed's helpers
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
from surreal_speed import proc_cpu, proc_hwm_mb  # noqa: E402

from bench.throughput_meters import CpuMeter, load_average, process_memory  # noqa: E402
from bench.throughput_run import begin, run, work_folder  # noqa: E402
from bench.throughput_stats import ms, percentile  # noqa: E402
from harness.checkers.run import Change  # noqa: E402
from harness.report.plots import analytics_lag, applied_times  # noqa: E402
from harness.shape import STORE_TABLE as TABLE  # noqa: E402
from netsync.changefeed import DEFAULT_RETENTION  # noqa: E402
from netsync.logs import Log  # noqa: E402
from netsync.projection import UPSERT  # noqa: E402
from netsync.settings import ProjectorSettings  # noqa: E402
from netsync.surreal import SurrealConnection  # noqa: E402
from tests.integration.analytics_procs import Analytics  # noqa: E402
from tests.integration.netsync_procs import SurrealServer  # noqa: E402

KEEPS_UP_P99_S = 1.0
PER_WRITER = 200  # rows/s given to one writer by default: one at the soak's rate, as its projector
KEYS = 64  # distinct keys, as many as the soak's view holds
decode_change = msgspec.json.Decoder(Change).decode


@dataclass
class Written:
    cid: str
    late_s: float  # how late its write began against the schedule (the client's own lag)
    acked: float  # Unix seconds when SurrealDB answered the write


def writers_for(rate: float, asked: int) -> int:
    return asked if asked > 0 else max(1, math.ceil(rate / PER_WRITER))


def connection(server: SurrealServer, log: Log) -> SurrealConnection:
    """A connection as the projector's: it defines the table with its CHANGEFEED on connecting."""
    settings = ProjectorSettings(
        name="bench-writer",
        nats_servers=(),
        stream="",
        consumer="",
        surreal_url=server.ws_url,
        surreal_user=server.user,
        surreal_pass=server.password,
        surreal_ns="solar",
        surreal_db="netsync",
        http_port=0,  # no HTTP: only the connection is used
        table=TABLE,
    )
    return SurrealConnection(settings, log, lambda up: None, DEFAULT_RETENTION)


async def prefill(server: SurrealServer, rows: int, log: Log) -> set[str]:
    """`rows` rows in the table before the timed writes, INSERTed 1,000 at a time (setup, not the
    projector's write): the role counts the table once a second when caught up, so its size matters."""
    conn = connection(server, log)
    try:
        for first in range(0, rows, 1000):
            batch = [
                {
                    "id": f"pre-{i:08d}",
                    "cid": f"pre-{i:08d}",
                    "key": f"k{i % KEYS}",
                    "value": i,
                    "stream_seq": i + 1,
                }
                for i in range(first, min(rows, first + 1000))
            ]
            await conn.query(f"INSERT INTO {TABLE} $rows;", {"rows": batch}, timeout=60)
    finally:
        await conn.drop()
    return {f"pre-{i:08d}" for i in range(rows)}


async def write_rows(
    server: SurrealServer, rate: float, seconds: float, writers: int, log: Log
) -> list[Written]:
    """rate x seconds rows, open loop over `writers` connections, each row the projector's UPSERT."""
    conns = [connection(server, log) for _ in range(writers)]
    for conn in conns:
        await conn.query("RETURN 1;")  # connected (and the table defined) before the clock starts
    n = round(rate * seconds)
    start = time.monotonic() + 0.05

    async def one(w: int, conn: SurrealConnection) -> list[Written]:
        out = []
        for i in range(w, n, writers):
            due = start + i / rate
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            began = time.monotonic()
            cid = f"r{rate:g}-{i:07d}"
            params = {"tb": TABLE, "cid": cid, "key": f"k{i % KEYS}", "value": i, "seq": i + 1}
            await conn.query(UPSERT, params)  # a failure ends the bench: the store is not under test
            out.append(Written(cid, began - due, time.time()))
        return out

    try:
        done = await asyncio.gather(*(one(w, c) for w, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.drop()
    return [row for rows in done for row in rows]


class AppliedLog:
    """The role's applied log (its volume's applied.jsonl, RUN-FORMAT's lines), read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.changes: list[Change] = []
        self.cids: set[str] = set()

    def read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        for line in data[:end].splitlines():
            c = decode_change(line)
            self.changes.append(c)
            if c.type == "applied" and c.cid is not None:
                self.cids.add(c.cid)
        self.offset += end


def summarise(
    rate: float, seconds: float, written: list[Written], changes: list[Change], writes_end: float
) -> dict[str, Any]:
    """Per rate: rows written and applied, the achieved write rate, the lag (the report's definition)
    p50/p99/max, the catch-up after the writes stopped, and whether the role kept up."""
    ours = {w.cid for w in written}
    applied = [c for c in changes if c.type == "applied" and c.cid in ours]
    applied_cids = {c.cid for c in applied}
    _, lag = analytics_lag(applied_times(applied), 0.0)  # `t` is Unix seconds: t0 = 0
    lags = sorted(float(x) for x in lag)
    missing = sorted(ours - applied_cids)
    late = sorted(w.late_s for w in written)
    span = writes_end - (min(w.acked for w in written) if written else writes_end)
    # Catch-up only once every row is in: with one missing there was none.
    catch_up = None if missing or not applied else max(c.t or 0.0 for c in applied) - writes_end
    p99 = percentile(lags, 99)
    return {
        "rate": rate,
        "seconds": seconds,
        "written": len(written),
        "applied": len(applied_cids),
        "applied_lines": len(applied),  # above `applied`: a cid applied twice
        "missing": len(missing),
        "missing_cids": missing[:20],
        "gaps": sum(1 for c in changes if c.type == "gap"),
        "write_rate": round((len(written) - 1) / span, 1) if span > 0 else None,
        "write_late_p99_ms": ms(1e3 * percentile(late, 99)) if late else None,
        "lag_p50_s": _s(percentile(lags, 50)),
        "lag_p99_s": _s(p99),
        "lag_max_s": _s(lags[-1] if lags else None),
        "lag_dropped": len(applied) - len(lags),  # applied before its stamp: clocks that disagree
        "catch_up_s": _s(catch_up),
        "keeps_up": not missing and p99 is not None and p99 < KEEPS_UP_P99_S,
    }


def _s(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def measure(args: argparse.Namespace, rate: float, workdir: Path) -> dict[str, Any]:
    """One rate on a fresh SurrealDB and a fresh analytics role."""
    writers = writers_for(rate, args.writers)
    with SurrealServer(workdir / "surreal") as server:
        analytics = Analytics(workdir, server, NETSYNC_ANALYTICS_POLL_MS=str(args.poll_ms))
        try:
            await analytics.start()
            pid = analytics.proc.pid
            assert pid is not None
            log = AppliedLog(analytics.state / "applied.jsonl")
            with open(workdir / "writers.log", "a") as out:
                wlog = Log("bench-writer", out)
                if args.prefill:
                    t = time.monotonic()
                    await applied_all(log, await prefill(server, args.prefill, wlog), analytics, 600.0)
                    print(f"  {args.prefill} rows prefilled and applied in {time.monotonic() - t:.1f} s")
                meter = CpuMeter({"analytics": pid, "surreal": server.pid or 0, "bench": os.getpid()})
                cpu0 = proc_cpu(pid)
                written = await write_rows(server, rate, args.seconds, writers, wlog)
            writes_end = max(w.acked for w in written)
            await applied_all(log, {w.cid for w in written}, analytics, args.catchup_timeout)
            cpu = proc_cpu(pid) - cpu0
            percent = meter.percent()
            memory = process_memory({"analytics": pid})
            late = _metric(analytics.get("/metrics").decode(), "netsync_analytics_late_total")
            row = summarise(rate, args.seconds, written, log.changes, writes_end)
            row |= {
                "writers": writers,
                "analytics_cpu_s": round(cpu, 2),
                "analytics_rss_mib": memory.get("analytics", {}).get("rss_mib"),
                "analytics_peak_rss_mib": round(proc_hwm_mb(pid) or 0.0, 1),
                "late_changes": late,  # seen below a cursor already past them (concurrent writers)
                "cpu_percent": percent,
                "alive": analytics.proc.running,
            }
            return row
        finally:
            analytics.proc.terminate(timeout=10)


async def applied_all(log: AppliedLog, cids: set[str], analytics: Analytics, timeout: float) -> bool:
    """Wait until the applied log holds every one of `cids`, or `timeout` passed, or the role died."""
    deadline = time.monotonic() + timeout
    while True:
        log.read()
        if cids <= log.cids:
            return True
        if time.monotonic() > deadline or not analytics.proc.running:
            return False
        await asyncio.sleep(0.05)  # the log is polled: the role reports nothing else


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| rate /s | writers | written | applied | write /s | lag p50 / p99 / max s | catch-up s "
        "| analytics CPU s (% of a core) | RSS / peak MiB | surreal % | machine % (others) | keeps up |"
    )
    lines = [head, "|" + "---:|" * 11 + "---|"]
    for r in rows:
        pc = r["cpu_percent"]
        lines.append(
            f"| {r['rate']:g} | {r['writers']} | {r['written']} | {r['applied']} | {r['write_rate']} "
            f"| {r['lag_p50_s']} / {r['lag_p99_s']} / {r['lag_max_s']} | {r['catch_up_s']} "
            f"| {r['analytics_cpu_s']} ({pc.get('analytics')}) "
            f"| {r['analytics_rss_mib']} / {r['analytics_peak_rss_mib']} | {pc.get('surreal')} "
            f"| {pc.get('machine')} ({pc.get('others')}) | {'yes' if r['keeps_up'] else '**no**'} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="200,400,800", help="rows/s written, one fresh run per rate")
    p.add_argument("--seconds", type=float, default=30.0, help="how long each rate writes")
    p.add_argument(
        "--writers", type=int, default=0, help=f"connections writing (0: one per {PER_WRITER} rows/s)"
    )
    p.add_argument("--poll-ms", type=int, default=200, help="NETSYNC_ANALYTICS_POLL_MS (the contract's 200)")
    p.add_argument(
        "--catchup-timeout", type=float, default=60.0, help="seconds after the writes to apply all"
    )
    p.add_argument("--prefill", type=int, default=0, help="rows in the table (and applied) before the writes")
    p.add_argument("--out", default="reports/bench/analytics-lag.json")
    p.add_argument("--keep", action="store_true", help="keep the processes' folders and logs")
    args = p.parse_args(argv)
    args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, started, meta = begin(args)
    del meta["agent_env"]  # no agents here
    meta |= {
        "poll_ms": args.poll_ms,
        "prefill": args.prefill,
        "keeps_up_rule": f"every row applied, lag p99 < {KEEPS_UP_P99_S} s",
    }
    print(f"analytics lag bench: rates {args.rates} rows/s, {args.seconds:g} s each; load {load_average()}")
    rows = []
    with work_folder(args.keep) as workdir:
        for n, rate in enumerate(args.rates, 1):
            row = asyncio.run(measure(args, rate, workdir / f"{n}-rate-{rate:g}"))
            rows.append(row)
            print(
                f"{rate:g}/s, {row['writers']} writer(s): {row['written']} written at {row['write_rate']}/s, "
                f"{row['applied']} applied, lag p50 {row['lag_p50_s']} p99 {row['lag_p99_s']} "
                f"max {row['lag_max_s']} s, catch-up {row['catch_up_s']} s, analytics CPU "
                f"{row['analytics_cpu_s']} s, RSS {row['analytics_rss_mib']} MiB, gaps {row['gaps']}, "
                f"late {row['late_changes']}",
                flush=True,
            )
    meta["load_average_end"] = load_average()
    print()
    print(table(rows))
    print(
        f"\nkeeps up: {meta['keeps_up_rule']}; "
        f"load average {meta['load_average_start']} -> {meta['load_average_end']}"
    )
    missing = [r for r in rows if r["missing"]]
    for r in missing:
        print(
            f"DEFECT: at {r['rate']:g}/s {r['missing']} rows written were never applied, "
            f"e.g. {r['missing_cids'][:5]}"
        )
    out.write_text(json.dumps({"meta": meta, "rates": rows}, indent=1) + "\n")
    print(f"report: {out}")
    return 1 if missing else 0


if __name__ == "__main__":
    run(main)
