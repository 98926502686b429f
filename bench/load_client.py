"""The load client's own cost, for both engines of harness/load/: CPU per 100 intents/s, and how late it
sends (p50, p99, max lag), against netsync as plain processes (no Docker).

    flock /tmp/solar-chaos-heavy.lock .venv/bin/python bench/load_client.py \
        [--rates 100,500] [--seconds 20] [--engines asyncio,locust,locust-2] [--clients 48]
    .venv/bin/python bench/load_client.py --lag-of reports/RUN/SCENARIO   # a scenario run's send lag

Starts NATS, the orchestrator and three agents (bench/netsync_throughput.py's cluster, contract
timeouts, no projector: it plays no part in a client's cost), then for each engine and rate sends the
harness's seeded plan with the harness's own code: `Load` (asyncio, in this process) or `LocustLoad`
(Locust subprocesses; `locust-N`: a master and N workers). The history is written as in a scenario run
(Locust's shards merged), and read back for the lag: an intent's invoke `t` less its due time (i/rate).
Client CPU is from /proc over the load's span (t = 0 to the last answer): this process for asyncio, the
Locust processes for Locust (the harness's own polling given apart). Each (engine, rate) runs on a
system at rest. The JSON goes to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throughput_cluster import Clusters, process_pids  # noqa: E402
from bench.throughput_meters import CpuMeter, load_average, source_state  # noqa: E402
from bench.throughput_run import work_folder  # noqa: E402
from bench.throughput_stats import percentile  # noqa: E402
from harness import store  # noqa: E402
from harness.history import History  # noqa: E402
from harness.load import Load, LoadPlan, LocustLoad  # noqa: E402
from harness.load.locust_engine import harness_shard  # noqa: E402
from tests.integration.netsync_procs import NatsServer  # noqa: E402

TIMEOUT_S = 5.0


def lags_and_outcomes(history: Path, rate: float) -> tuple[list[float], Counter[str], list[float]]:
    """Each invoke's lateness (ms) against its due time, the completions' types, and answer times (ms)."""
    lag: list[float] = []
    outcomes: Counter[str] = Counter()
    invoked: dict[str, float] = {}
    answer: list[float] = []
    with open(history) as f:
        for line in f:
            op = json.loads(line)
            if op.get("f") != "intent":
                continue
            if op["type"] == "invoke":
                due = int(op["cid"].rsplit("-", 1)[1]) / rate
                lag.append((op["t"] - due) * 1000)
                invoked[op["cid"]] = op["t"]
            else:
                outcomes[op.get("outcome") or op["type"]] += 1
                if op["cid"] in invoked:
                    answer.append((op["t"] - invoked.pop(op["cid"])) * 1000)
    return lag, outcomes, answer


async def one(
    engine: str, urls: dict[str, str], plan: LoadPlan, out: Path, system: dict[str, int]
) -> dict[str, Any]:
    """One engine at one rate: the client's CPU over the load and the lateness of its sends."""
    out.mkdir(parents=True)
    workers = int(engine.split("-", 1)[1]) if engine.startswith("locust-") else 0
    tag = f"bench-{engine}-r{plan.rate:g}-{int(time.time())}"
    load: Load | LocustLoad
    if engine == "asyncio":
        history = History(out / store.HISTORY)
        load = Load(urls, history, plan, tag)
    else:
        history = History(harness_shard(out))
        load = LocustLoad(urls, history, plan, tag, out, workers, lambda line: print(f"  {line}", flush=True))
    await load.prepare()
    client = {"harness": os.getpid()} | (load.pids() if isinstance(load, LocustLoad) else {})
    meter = CpuMeter(client | system)  # the system's processes too: `others` is then load from outside
    history.t0 = time.monotonic()
    if isinstance(load, LocustLoad):
        load.begin()
        await load.wait_done()
        span = history.now()
        cpu = meter.percent()
        await asyncio.to_thread(load.stop)
    else:
        await load.run()
        span = history.now()
        cpu = meter.percent()
    history.close()
    load.finish(lambda line: print(f"  {line}", flush=True))
    lag, outcomes, answer = lags_and_outcomes(out / store.HISTORY, plan.rate)
    senders = sum(v for k, v in cpu.items() if k in client and k != "harness")
    client_cpu = cpu.get("harness", 0.0) if engine == "asyncio" else senders
    return {
        "engine": engine,
        "rate": plan.rate,
        "seconds": plan.duration,
        "intents": plan.total,
        "span_s": round(span, 2),
        "client_cpu_percent": round(client_cpu, 1),
        "client_cpu_per_100_per_s": round(client_cpu / (plan.rate / 100), 2),
        "harness_cpu_percent": cpu.get("harness"),
        "cpu_percent": cpu,
        "lag_ms": {
            "p50": round(percentile(lag, 50) or 0, 2),
            "p99": round(percentile(lag, 99) or 0, 2),
            "max": round(max(lag, default=0), 2),
        },
        "answer_ms": {
            "p50": round(percentile(answer, 50) or 0, 2),
            "p99": round(percentile(answer, 99) or 0, 2),
        },
        "outcomes": dict(outcomes),
        "load_average_after": load_average(),
    }


def lag_of(run_dir: Path) -> int:
    """The send lag of a run directory's history (its rate from scenario.json), by nearest rank."""
    rate = json.loads((run_dir / store.SCENARIO).read_text())["load"]["rate"]
    lag, outcomes, answer = lags_and_outcomes(run_dir / store.HISTORY, rate)
    late = sum(1 for x in lag if x > 100)
    print(
        f"{len(lag)} intents at {rate:g}/s: send lag p50 {percentile(lag, 50):.2f} ms, p99 "
        f"{percentile(lag, 99):.2f} ms, max {max(lag):.1f} ms; {late} sent over 100 ms late; "
        f"answers p50 {percentile(answer, 50):.1f} ms, p99 {percentile(answer, 99):.1f} ms; {dict(outcomes)}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100,500", help="intents/s, comma-separated")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--engines", default="asyncio,locust,locust-2", help="asyncio, locust, locust-N")
    p.add_argument("--clients", type=int, default=48, help="the load's clients (Jepsen's processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/bench/load-client.json")
    p.add_argument(
        "--lag-of", metavar="RUN_DIR", help="only print the send lag of a scenario's run directory"
    )
    args = p.parse_args(argv)
    if args.lag_of:
        return lag_of(Path(args.lag_of))
    rates = [float(r) for r in args.rates.split(",")]
    engines = args.engines.split(",")
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(work_folder(False))
        nats_server = stack.enter_context(NatsServer(workdir / "nats"))
        clusters = stack.enter_context(Clusters(workdir, nats_server, None))
        runs = Path(tempfile.mkdtemp(prefix="load-client-", dir=workdir))
        for rate in rates:
            for engine in engines:
                cluster = clusters.at_rest(f"{engine} at {rate:g}/s")
                urls = {name: cluster.url(name) for name in cluster.names}
                plan = LoadPlan(rate, args.seconds, 16, args.clients, TIMEOUT_S, args.seed)
                print(
                    f"{engine} at {rate:g}/s for {args.seconds:g} s (load average {load_average()}) ...",
                    flush=True,
                )
                system = process_pids(cluster, nats_server, None)
                system.pop("bench-client", None)
                row = asyncio.run(one(engine, urls, plan, runs / f"{engine}-{rate:g}", system))
                rows.append(row)
                lag = row["lag_ms"]
                print(
                    f"  client CPU {row['client_cpu_percent']} % ({row['client_cpu_per_100_per_s']} "
                    f"per 100/s), lag p50/p99/max {lag['p50']}/{lag['p99']}/{lag['max']} ms, "
                    f"answers p99 {row['answer_ms']['p99']} ms, {row['outcomes']}, cpu {row['cpu_percent']}",
                    flush=True,
                )
    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(["python", *sys.argv]),
            "cpus": os.cpu_count(),
            "clients": args.clients,
            "seed": args.seed,
            "source": source_state(),
        },
        "rows": rows,
    }
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{'engine':<10} {'rate':>5} {'CPU %':>6} {'per 100/s':>9} {'lag p50':>8} {'p99':>7} {'max':>7}")
    for r in rows:
        lag = r["lag_ms"]
        print(
            f"{r['engine']:<10} {r['rate']:>5g} {r['client_cpu_percent']:>6} "
            f"{r['client_cpu_per_100_per_s']:>9} "
            f"{lag['p50']:>8} {lag['p99']:>7} {lag['max']:>7}"
        )
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
