"""Both implementations side by side in one throughput run (issue 29, "Speed"): a cluster of three
agents, some netsync (Python) and some net-sync-ts (TypeScript), takes one open-loop load spread evenly
over its agents, and each implementation's agents are measured apart: intents/s accepted and committed
per agent, quorum latency p50/p99, commit latency, failures, against the throughput bench's budgets.

    python bench/implementations_throughput.py [--agents netsync,net-sync-ts,net-sync-ts]
                                               [--rates 60,120,180,240,300] [--seconds 10]

Everything but the agents' implementation is bench/netsync_throughput.py's: NATS, SurrealDB, netsync's
orchestrator and projector as processes on 127.0.0.1, the contract's default timeouts (intent 80 ms,
commit 400 ms), the harness's seeded plan and queue-fed sender, a cluster at rest before each rate.
net-sync-ts runs as its image does (`node dist/src/cli.js agent`): dist compiled from the checkout's
packages/net-sync/src into the build cache (harness/build_cache.py, keyed like the image), beside its
production node_modules, with the cached Node 22. The checkout's own dist/ is not used: other builds
rewrite it.

Why one mixed cluster: the two rates come from the same two cores at the same moment, so load from other
work on the machine falls on both alike. Every agent is offered the same rate (the plan draws the agent of
each intent evenly) and does the same work (proposes a third, votes on the rest), so per agent the figures
compare directly. The comparable figure is the highest offered rate per agent at which an
implementation's own intents still hold every budget, found by a ramp; at a rate both hold, an open loop
commits what it is offered, so the committed rates there are equal by construction and say nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.throughput_cluster import Clusters, measure_rate, process_pids  # noqa: E402
from bench.throughput_load import Run, load_plan  # noqa: E402
from bench.throughput_meters import load_average  # noqa: E402
from bench.throughput_profile import (  # noqa: E402
    PROFILED_AGENT,
    choose_profiler,
    profile_text,
    profile_with_pyspy,
)
from bench.throughput_run import begin, run, work_folder  # noqa: E402
from bench.throughput_stats import (  # noqa: E402
    COMMIT_P99_BUDGET_MS,
    FAILURE_BUDGET,
    INTENT_P99_BUDGET_MS,
    breaking_point,
    commit_p99_text,
    fmt_ms,
    summarise,
)
from harness.images import Images  # noqa: E402
from harness.load.ops import intents  # noqa: E402
from tests.integration.netsync_procs import Cluster, NatsServer, SurrealServer  # noqa: E402

IMPLEMENTATIONS = ("netsync", "net-sync-ts")
PYTHON, TYPESCRIPT = IMPLEMENTATIONS


# -- net-sync-ts as a process ---------------------------------------------------------------


def ts_agent_command(workdir: Path) -> tuple[list[str], dict[str, Any]]:
    """`node cli.js agent` for net-sync-ts as its image holds it: dist compiled from the checkout's
    src (the image's build cache, keyed by the image's inputs), its production node_modules and
    package.json beside it in `workdir`. The command, and which source it ran."""
    images = Images("offline")
    pkg = ROOT / images.spec[TYPESCRIPT]["package"]
    key = images.key(TYPESCRIPT)
    node = images.builds.node22()
    dist = images.builds.tsc_dist(TYPESCRIPT, pkg, key)
    prod = images.builds.node_modules(TYPESCRIPT, pkg, dev=False)
    app = workdir / "net-sync-ts"
    shutil.copytree(dist / "dist", app / "dist")
    (app / "node_modules").symlink_to(prod / "node_modules")
    shutil.copy2(pkg / "package.json", app / "package.json")  # "type": "module"
    digest = hashlib.sha256()
    for path in sorted((pkg / "src").rglob("*.ts")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    source = {"image_key": key[:12], "src_sha256": digest.hexdigest()[:16], "node": str(node)}
    return [str(node), str(app / "dist" / "src" / "cli.js"), "agent"], source


class MixedClusters(Clusters):
    """The throughput bench's clusters, each agent run by the implementation `agents` names for it
    (agent-1 first); a replacement cluster is mixed alike."""

    def __init__(
        self,
        workdir: Path,
        nats_server: NatsServer,
        surreal: SurrealServer | None,
        agents: list[str],
        ts_command: list[str],
    ) -> None:
        super().__init__(workdir, nats_server, surreal)
        self.agents, self.ts_command = agents, ts_command

    def _mix(self, cluster: Cluster) -> None:
        for name, implementation in zip(cluster.names, self.agents, strict=True):
            if implementation == TYPESCRIPT:
                cluster.agents[name].command = lambda: list(self.ts_command)  # type: ignore[method-assign]

    def start(self, why: str, prepare: Any = None) -> Cluster:
        return super().start(why, self._mix)


# -- one rate, split by implementation ------------------------------------------------------


def planned_per_agent(rate: float, seconds: float, names: list[str], tag: str, seed: int) -> Counter[str]:
    """How many intents the seeded plan sent to each agent: the same plan open_loop sent."""
    plan = load_plan(rate, seconds, len(names), seed)
    return Counter(i.agent for i in intents(plan, names, tag))


def split(run: Run, names: list[str], agents: list[str], seed: int, tag: str) -> dict[str, Any]:
    """The rate's figures for each implementation, over its own agents' intents only, judged by the
    throughput bench's budgets; rates also per agent, so 1 agent and 2 compare."""
    planned = planned_per_agent(run.rate, run.seconds, names, tag, seed)
    out = {}
    for implementation in IMPLEMENTATIONS:
        own = [n for n, impl in zip(names, agents, strict=True) if impl == implementation]
        if not own:
            continue
        sub = dataclasses.replace(
            run,
            samples=[s for s in run.samples if s.agent in own],
            planned=sum(planned[n] for n in own),
            cpu={k: v for k, v in run.cpu.items() if k in own},
        )
        row = summarise(sub)
        row["agents"] = own
        row["offered_per_agent_per_s"] = round(row["offered_per_s"] / len(own), 1)
        # Both over the load's seconds. The throughput bench's achieved_per_s divides by the time to
        # the last 200 instead, which flatters an implementation whose 200s stopped midway.
        o = row["outcomes"]
        row["accepted_per_agent_per_s"] = round(
            (o["committed"] + o["pending-commit"]) / run.seconds / len(own), 1
        )
        committed = sum(
            1
            for s in sub.samples
            if s.outcome == "committed" or (s.outcome == "pending-commit" and s.stored_wall is not None)
        )  # a 202 counts once the replay stored it (read from the stream after the rate)
        row["committed_per_agent_per_s"] = round(committed / run.seconds / len(own), 1)
        row["cpu_percent_per_agent"] = round(sum(sub.cpu.values()) / len(own), 1) if sub.cpu else None
        row["rss_mib_per_agent"] = {n: run.memory_after.get(n, {}).get("rss_mib") for n in own}
        out[implementation] = row
    return out


def sweep(
    clusters: MixedClusters,
    nats_server: NatsServer,
    surreal: SurrealServer | None,
    rates: list[float],
    seconds: float,
    seed: int,
) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        cluster = clusters.at_rest(f"rate {rate:g}")
        pids = process_pids(cluster, nats_server, surreal)
        print(f"rate {rate:g}/s ({rate / len(cluster.names):g} per agent) for {seconds:g} s ...", flush=True)
        tag = f"mixed-r{rate:g}"
        run = asyncio.run(measure_rate(cluster, nats_server.url, rate, seconds, tag, pids, seed))
        run.cluster = clusters.number
        both = split(run, cluster.names, clusters.agents, seed, tag)
        whole = summarise(run)
        rows.append({"rate": rate, "implementations": both, "whole": whole, "cluster": clusters.number})
        for implementation, r in both.items():
            o = r["outcomes"]
            print(
                f"  {implementation:<11} {o['committed']} committed, {o['pending-commit']} pending, "
                f"{o['aborted']} aborted, {o['rejected']} rejected, {o['error']} errors; "
                f"{r['committed_per_agent_per_s']}/s per agent; "
                f"intent p99 {fmt_ms(r['intent_ms']['p99'])} ms, "
                f"commit p99 {commit_p99_text(r)} ms; cpu {r['cpu_percent_per_agent']} % per agent",
                flush=True,
            )
    return rows


# -- the verdict and its printout ------------------------------------------------------------


def verdict(rows: list[dict[str, Any]], agents: list[str]) -> dict[str, Any]:
    """Per implementation, the highest per-agent rate that held below its first break (the
    throughput bench's breaking_point over its own rows); their ratio, and whether TS holds at
    least the Python rate."""
    n = len(agents)
    out: dict[str, Any] = {}
    for implementation in IMPLEMENTATIONS:
        own = [r["implementations"][implementation] for r in rows if implementation in r["implementations"]]
        if not own:
            continue
        bp = breaking_point(own)
        held = bp["highest_holding_rate"]
        out[implementation] = bp | {
            "highest_holding_per_agent": None if held is None else round(held / n, 1),
            "committed_per_agent_at_it": next(
                (r["committed_per_agent_per_s"] for r in own if r["rate"] == held), None
            ),
        }
    py, ts = out.get(PYTHON, {}), out.get(TYPESCRIPT, {})
    p, t = py.get("highest_holding_per_agent"), ts.get("highest_holding_per_agent")
    # One that held no rate sustains less than the ramp's first step: the ratio is then a bound.
    lowest = rows[0]["rate"] / n if rows else None
    out["ts_over_python"], out["ratio_is"] = None, None
    if not py or not ts:
        pass  # one implementation only: nothing to compare
    elif p and t is not None:
        out["ts_over_python"], out["ratio_is"] = round(t / p, 2), "exact"
    elif p is None and t and lowest:
        out["ts_over_python"], out["ratio_is"] = round(t / lowest, 2), "more than"
    elif t is None and p:
        out["ts_over_python"], out["ratio_is"] = round(lowest / p, 2) if lowest else None, "less than"
    if not py or not ts or (p is None and t is None):
        out["ts_holds_at_least_python"] = None  # one is missing, or neither held any rate: no answer
    else:
        out["ts_holds_at_least_python"] = p is None or (t is not None and t >= p)
    # Both held at every rate: the ramp did not reach either limit, and the figures are lower bounds.
    out["neither_broke"] = (
        bool(py and ts) and py["first_breaking_rate"] is None and ts["first_breaking_rate"] is None
    )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'rate':>5} {'impl':<11} {'/agent':>6} {'sent/s':>7} {'acc/ag':>6} {'com/ag':>6} {'200':>6} "
        f"{'pend':>5} {'abort':>5} {'rej':>4} {'err':>4} {'int p50':>7} {'int p99':>7} {'com p50':>7} "
        f"{'com p99':>7} {'cpu/ag':>6} {'others%':>7}  verdict"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        for implementation, r in row["implementations"].items():
            o = r["outcomes"]
            others = row["whole"]["cpu_percent"].get("others")
            lines.append(
                f"{row['rate']:>5g} {implementation:<11} {r['offered_per_agent_per_s']:>6.1f} "
                f"{r['offered_per_s']:>7.1f} {r['accepted_per_agent_per_s']:>6.1f} "
                f"{r['committed_per_agent_per_s']:>6.1f} "
                f"{o['committed']:>6} {o['pending-commit']:>5} {o['aborted']:>5} {o['rejected']:>4} "
                f"{o['error']:>4} {fmt_ms(r['intent_ms']['p50']):>7} "
                f"{fmt_ms(r['intent_ms']['p99']):>7} "
                f"{fmt_ms(r['commit_ms']['p50']):>7} {commit_p99_text(r):>7} "
                f"{r['cpu_percent_per_agent'] or 0:>6.0f} {'-' if others is None else f'{others:.0f}':>7}  "
                + ("holds" if r["budget"]["holds"] else "BREAKS: " + "; ".join(r["budget"]["why"]))
            )
    return "\n".join(lines)


def print_verdict(report: dict[str, Any]) -> None:
    v = report["verdict"]
    print()
    print(table(report["rates"]))
    print()
    print(
        f"agents {report['meta']['agents']}; budgets: intent p99 < {INTENT_P99_BUDGET_MS:.0f} ms, "
        f"commit p99 < {COMMIT_P99_BUDGET_MS:.0f} ms, aborted+rejected+errors < {FAILURE_BUDGET:.0%}"
    )
    for implementation in IMPLEMENTATIONS:
        if implementation not in v:
            continue
        x = v[implementation]
        why = f" ({'; '.join(x['why'])})" if x["why"] else ""
        print(
            f"{implementation:<11} highest rate that holds: {x['highest_holding_rate']} "
            f"({x['highest_holding_per_agent']}/s per agent, committed {x['committed_per_agent_at_it']}/s "
            f"per agent); first that breaks: {x['first_breaking_rate']}{why}"
        )
    print(
        f"net-sync-ts / netsync per agent: {'' if v['ratio_is'] in (None, 'exact') else v['ratio_is'] + ' '}"
        f"{v['ts_over_python']}; "
        f"TypeScript holds at least the Python rate: {v['ts_holds_at_least_python']}"
        + (" (neither broke: both figures are lower bounds; raise --rates)" if v["neither_broke"] else "")
    )


def profile(
    clusters: MixedClusters,
    nats_server: NatsServer,
    surreal: SurrealServer | None,
    args: argparse.Namespace,
    stem: Path,
) -> dict[str, Any]:
    """agent-1 under py-spy (the throughput bench's profile_with_pyspy) on a fresh mixed cluster at
    `--profile-rate`: where a netsync agent among net-sync-ts peers spends its CPU."""
    if args.agents[0] != PYTHON:
        raise SystemExit("--profile-rate profiles agent-1, which must be netsync")
    cluster = clusters.start("for the profile")
    profiler, why_not = choose_profiler("py-spy", cluster.agents[PROFILED_AGENT].pid or 0)
    print(f"profiling {PROFILED_AGENT} with {profiler} at {args.profile_rate:g}/s ...", flush=True)
    pids = process_pids(cluster, nats_server, surreal)
    got = asyncio.run(
        profile_with_pyspy(cluster, nats_server.url, args.profile_rate, args.seconds, stem, pids)
    )
    result = {"profiler": profiler, "agent": PROFILED_AGENT, "rate": args.profile_rate}
    result |= {"seconds": args.seconds, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    result |= {"load_average": load_average(), "pyspy_not_used_because": why_not} | got
    text = stem.with_name(f"{stem.name}-profile.txt")
    text.write_text(profile_text(result))
    print(f"profile: {text}", flush=True)
    return result | {"text": str(text)}


# -- the whole run ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--agents", default=f"{PYTHON},{TYPESCRIPT},{TYPESCRIPT}", help="one implementation per agent"
    )
    p.add_argument(
        "--rates", default="60,120,180,240,300", help="intents/s offered to the cluster, comma-separated"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="load duration per rate")
    p.add_argument("--seed", type=int, default=0, help="the load plan's seed (agents, keys, values)")
    p.add_argument("--out", default="reports/bench/implementations-throughput.json", help="JSON report")
    p.add_argument(
        "--profile-rate",
        type=float,
        default=None,
        help="then profile agent-1 (netsync) with py-spy on a fresh cluster at this rate",
    )
    p.add_argument("--no-projector", action="store_true", help="skip SurrealDB and the projector")
    p.add_argument("--keep", action="store_true", help="keep the processes' folders and logs")
    args = p.parse_args(argv)
    args.agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    if len(args.agents) < 2 or set(args.agents) - set(IMPLEMENTATIONS):
        p.error(f"--agents: at least two agents, each one of {', '.join(IMPLEMENTATIONS)}")
    args.rates = sorted({float(r) for r in args.rates.split(",") if r.strip()})
    if not args.rates or min(args.rates) <= 0 or args.seconds <= 0:
        p.error("rates and seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out, started, meta = begin(args)
    meta |= {
        "agents": args.agents,
        "orchestrator": PYTHON,
        "projector": None if args.no_projector else PYTHON,
    }
    report: dict[str, Any] = {"meta": meta}
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(work_folder(args.keep))
        ts_command, meta["net_sync_ts"] = ts_agent_command(workdir)
        print(
            f"implementations throughput bench: agents {args.agents}, rates {args.rates}, "
            f"{args.seconds:g} s each; "
            f"netsync {meta['source']}; net-sync-ts {meta['net_sync_ts']}",
            flush=True,
        )
        nats_server = stack.enter_context(NatsServer(workdir / "nats"))
        surreal = None if args.no_projector else stack.enter_context(SurrealServer(workdir / "surreal"))
        clusters = stack.enter_context(MixedClusters(workdir, nats_server, surreal, args.agents, ts_command))
        rows = sweep(clusters, nats_server, surreal, args.rates, args.seconds, args.seed)
        report["rates"] = rows
        report["verdict"] = verdict(rows, args.agents)
        report["clusters_replaced"] = clusters.replaced
        if args.profile_rate:
            report["profile"] = profile(clusters, nats_server, surreal, args, out.with_suffix(""))
    meta["load_average_end"] = load_average()
    meta["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    print_verdict(report)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {out} ({meta['wall_seconds']:g} s)")
    return 0


if __name__ == "__main__":
    run(main)
