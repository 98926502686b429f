"""netsync throughput benchmark: how many intents per second the reference system takes
on this machine before its latency and loss budgets break.

    python bench/netsync_throughput.py [--rates 25,50,100,150,200,300] [--seconds 15]
                                       [--out reports/bench/netsync-throughput.json] [--profile]

Starts NATS (JetStream), SurrealDB, the orchestrator, three agents and the projector as
plain processes on 127.0.0.1 (tests/integration/netsync_procs.py's `Cluster`), with the
contract's DEFAULT agent timeouts (intent 80 ms, commit 400 ms), not the tests' generous
ones. For each rate it runs an open-loop load: request i is sent at t0 + i/rate whatever
happened to the earlier ones (so a slow system faces a growing queue, as it would in
production), to agents drawn by the harness's seeded plan (--seed), rate*seconds requests in all, each
bounded by a client timeout and the whole run by a deadline.

Per request it records the HTTP outcome, the agent's `quorum_ms` and the client's
invoke -> answer time. Intents answered 202 (pending-commit) are committed later by the
agent's replay; their invoke -> committed time is taken from the JetStream message's
store timestamp, read from the stream after the run (same host, same clock), so the
commit latency covers every decided intent, not only the lucky ones.

Budgets, per rate: intent p99 (quorum_ms) < 100 ms, commit p99 (invoke -> committed)
< 500 ms, and aborted + rejected + errors < 1 % of the requests.

`--profile` then loads agent-1 at the highest rate that held (the one just below the
breaking point) and profiles it: with py-spy when it can attach (install it into the venv
first: `.venv/bin/pip install py-spy`; `make bench` does), else by restarting agent-1
under cProfile (bench/cprofile_agent.py). The summary goes next to the JSON.

Everything it starts is killed when it ends, also on Ctrl-C or SIGTERM. Only loopback.

The pieces live beside it: throughput_load.py (the open-loop load, per-request records),
throughput_stream.py (commit times from the stream), throughput_cluster.py (the cluster, at rest,
one rate measured), throughput_stats.py (percentiles, budgets, verdicts), throughput_profile.py
(py-spy / cProfile), throughput_meters.py (CPU, memory, load, source), throughput_report.py (the
verdict printed) and throughput_run.py (begin, work folder, exit status).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so `bench`, `tests.integration.netsync_procs`, `netsync` and `harness` import
    sys.path.insert(0, str(ROOT))

from bench.throughput_cluster import Clusters, connection_denials, measure_rate, process_pids  # noqa: E402
from bench.throughput_meters import load_average, source_state  # noqa: E402
from bench.throughput_profile import (  # noqa: E402
    PROFILED_AGENT,
    choose_profiler,
    profile_text,
    profile_with_cprofile,
    profile_with_pyspy,
)
from bench.throughput_report import print_verdict  # noqa: E402
from bench.throughput_run import begin, run, work_folder  # noqa: E402
from bench.throughput_stats import (  # noqa: E402
    COMMIT_P99_BUDGET_MS,
    FAILURE_BUDGET,
    INTENT_P99_BUDGET_MS,
    WINDOW_S,
    breaking_point,
    commit_p99_text,
    fmt_ms,
    summarise,
)
from tests.integration.netsync_procs import NatsServer, SurrealServer  # noqa: E402


def sweep(
    clusters: Clusters,
    nats_server: NatsServer,
    surreal: SurrealServer | None,
    rates: list[float],
    seconds: float,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every rate in turn, lowest first, each on a system at rest."""
    rows = []
    for rate in rates:
        cluster = clusters.at_rest(f"rate {rate:g}")
        pids = process_pids(cluster, nats_server, surreal)
        denials = connection_denials(cluster)
        print(f"rate {rate:g}/s for {seconds:g} s (load average {load_average()}) ...", flush=True)
        run = asyncio.run(
            measure_rate(cluster, nats_server.url, rate, seconds, f"bench-r{rate:g}", pids, seed)
        )
        run.cluster, run.denials = clusters.number, connection_denials(cluster) - denials
        row = summarise(run)
        rows.append(row)
        o = row["outcomes"]
        errors = f" {row['errors']}" if row["errors"] else ""
        print(
            f"  sent {row['sent']}/{row['planned']}: {o['committed']} committed, "
            f"{o['pending-commit']} pending, {o['aborted']} aborted, {o['rejected']} rejected, "
            f"{o['error']} errors{errors}; intent p99 {fmt_ms(row['intent_ms']['p99'])} ms, "
            f"commit p99 {commit_p99_text(row)} ms; {run.denials} libp2p connection denials; "
            f"drained in {run.settle_s} s; cpu % {row['cpu_percent']}; client full GCs "
            f"{run.client_gc.get('full_collections')}, longest {run.client_gc.get('max_ms')} ms",
            flush=True,
        )
        bad = [w for w in row["windows"] if w["answers_over_500_ms"] or w["not_committed"]]
        if len(row["windows"]) > 2 and bad:
            print(
                f"  {len(bad)} of {len(row['windows'])} windows of {WINDOW_S:g} s had answers over "
                "500 ms or failures; the worst: "
                + "; ".join(
                    f"from {w['from_s']:g} s: {w['answers_over_500_ms']} slow, {w['not_committed']} failed, "
                    f"p99 {w['answer_p99_ms']} ms, send lag max {w['send_lag_max_ms']} ms"
                    for w in sorted(bad, key=lambda w: -w["answers_over_500_ms"])[:3]
                ),
                flush=True,
            )
        before, after = run.memory_before, run.memory_after
        print(
            "  rss MiB / open fds, before -> after: "
            + ", ".join(
                f"{name} {before[name]['rss_mib']:g}/{before[name]['fds']} -> {m['rss_mib']:g}/{m['fds']}"
                for name, m in after.items()
                if name in before
            ),
            flush=True,
        )
    return rows


def run_bench(args: argparse.Namespace, stem: Path) -> dict[str, Any]:
    """Start everything, sweep the rates, profile when asked (its files named from
    `stem`); everything started is killed on the way out of the `with` blocks."""
    report: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(work_folder(args.keep))
        nats_server = stack.enter_context(NatsServer(workdir / "nats"))
        surreal = None if args.no_projector else stack.enter_context(SurrealServer(workdir / "surreal"))
        clusters = stack.enter_context(Clusters(workdir, nats_server, surreal))
        rows = sweep(clusters, nats_server, surreal, args.rates, args.seconds, args.seed)
        report["rates"] = rows
        report["breaking_point"] = bp = breaking_point(rows)
        report["clusters_replaced"] = clusters.replaced
        if args.profile:
            # Just below the breaking point: the busiest the agent gets while still healthy.
            rate = bp["highest_holding_rate"] or bp["first_breaking_rate"] or args.rates[-1]
            # A fresh cluster: one that went through overload may carry damage (connections
            # dropped but still counted by libp2p) that would profile the damage instead.
            cluster = clusters.start("for the profile")
            profiler, why_not = choose_profiler(args.profiler, cluster.agents[PROFILED_AGENT].pid or 0)
            profile: dict[str, Any] = {"profiler": profiler, "agent": PROFILED_AGENT, "rate": rate}
            profile |= {"seconds": args.profile_seconds, "pyspy_not_used_because": why_not}
            print(f"profiling {PROFILED_AGENT} with {profiler} at {rate:g}/s ...", flush=True)
            profile["load_average"] = load_average()
            if profiler == "py-spy":
                pids = process_pids(cluster, nats_server, surreal)
                profile |= asyncio.run(
                    profile_with_pyspy(
                        cluster, nats_server.url, rate, args.profile_seconds, stem, pids, args.pyspy_blocking
                    )
                )
            else:  # agent-1 must start under the wrapper: a fresh cluster
                profile |= profile_with_cprofile(
                    clusters, nats_server, surreal, rate, args.profile_seconds, stem
                )
            report["profile"] = profile
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--rates", default="100,200,300,400,500,600,700", help="intents/s to offer, comma-separated"
    )
    p.add_argument("--seconds", type=float, default=15.0, help="load duration per rate")
    p.add_argument("--seed", type=int, default=0, help="the load plan's seed (agents, keys, values)")
    p.add_argument(
        "--out",
        default="reports/bench/netsync-throughput.json",
        help="JSON report (relative: to the repo root)",
    )
    p.add_argument("--profile", action="store_true", help="profile agent-1 at the highest rate that held")
    p.add_argument(
        "--profiler",
        choices=("auto", "py-spy", "cprofile"),
        default="auto",
        help="auto: py-spy when it can attach, else cProfile",
    )
    p.add_argument(
        "--profile-seconds", type=float, default=None, help="profile duration (default: --seconds)"
    )
    p.add_argument(
        "--pyspy-blocking",
        action="store_true",
        help="pause the agent per sample: whole stacks, more perturbation",
    )
    p.add_argument("--no-projector", action="store_true", help="skip SurrealDB and the projector")
    p.add_argument("--keep", action="store_true", help="keep the processes' folders and logs")
    args = p.parse_args(argv)
    args.rates = sorted({float(r) for r in args.rates.split(",") if r.strip()})
    if not args.rates or min(args.rates) <= 0 or args.seconds <= 0:
        p.error("rates and seconds must be positive")
    args.profile_seconds = args.profile_seconds or args.seconds
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, started, meta = begin(args)
    meta |= {
        "projector": not args.no_projector,
        "budgets": {
            "intent_p99_ms": INTENT_P99_BUDGET_MS,
            "commit_p99_ms": COMMIT_P99_BUDGET_MS,
            "failure_share": FAILURE_BUDGET,
        },
    }
    print(
        f"netsync throughput bench: rates {args.rates}, {args.seconds:g} s each; "
        f"load average {load_average()}; netsync {meta['source']}"
    )
    report = {"meta": meta} | run_bench(args, out.with_suffix(""))
    meta["load_average_end"] = load_average()
    if source_state()["netsync_sha256"] != meta["source"]["netsync_sha256"]:
        # Processes started after the change ran other code than those before it.
        meta["source"]["changed_during_run"] = True
        print("WARNING: netsync/ changed while the bench ran: the figures mix two versions")
    meta["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    print_verdict(report)
    if "profile" in report:
        report["profile"]["date"] = meta["date"]
        text = out.with_name(f"{out.with_suffix('').name}-profile.txt")
        text.write_text(profile_text(report["profile"]))
        report["profile"]["text"] = str(text)
        print(f"profile ({report['profile']['profiler']}): {text}")
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    run(main)
