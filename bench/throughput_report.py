"""bench/netsync_throughput.py's verdict on the terminal: the table of rates and the budgets,
the breaking point and the load the machine was under."""

from __future__ import annotations

from typing import Any

from bench.throughput_stats import (
    COMMIT_P99_BUDGET_MS,
    FAILURE_BUDGET,
    INTENT_P99_BUDGET_MS,
    commit_p99_text,
    fmt_ms,
)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'rate':>5} {'sent/s':>7} {'ok/s':>6} {'commit':>6} {'pend':>5} {'abort':>5} {'rej':>4} {'err':>4} "
        f"{'int p50':>7} {'int p99':>7} {'com p50':>7} {'com p99':>7} {'lag99':>6} "
        f"{'agents%':>8} {'others%':>7} {'denied':>6} {'load1':>5}  verdict"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        o, cpu = r["outcomes"], r["cpu_percent"]
        agents_cpu = sum(v for k, v in cpu.items() if k.startswith("agent-"))
        others = f"{cpu['others']:.0f}" if "others" in cpu else "-"
        load = r["load_average"]["after"]
        load1 = load[0] if load else float("nan")
        com_p99 = commit_p99_text(r)
        lines.append(
            f"{r['rate']:>5g} {r['offered_per_s']:>7.1f} {r['achieved_per_s']:>6.1f} {o['committed']:>6} "
            f"{o['pending-commit']:>5} {o['aborted']:>5} {o['rejected']:>4} {o['error']:>4} "
            f"{fmt_ms(r['intent_ms']['p50']):>7} {fmt_ms(r['intent_ms']['p99']):>7} "
            f"{fmt_ms(r['commit_ms']['p50']):>7} {com_p99:>7} {fmt_ms(r['client_send_lag_ms']['p99']):>6} "
            f"{agents_cpu:>8.0f} {others:>7} {r['libp2p_connection_denials']:>6} {load1:>5.2f}  "
            + ("holds" if r["budget"]["holds"] else "BREAKS: " + "; ".join(r["budget"]["why"]))
        )
    return "\n".join(lines)


def print_verdict(report: dict[str, Any]) -> None:
    meta, bp = report["meta"], report["breaking_point"]
    print()
    print(table(report["rates"]))
    print()
    print(
        f"budgets: intent p99 < {INTENT_P99_BUDGET_MS:.0f} ms, commit p99 < {COMMIT_P99_BUDGET_MS:.0f} ms, "
        f"aborted+rejected+errors < {FAILURE_BUDGET:.0%}"
    )
    why = f" ({'; '.join(bp['why'])})" if bp["why"] else ""
    print(
        f"highest rate that holds: {bp['highest_holding_rate']}; "
        f"first that breaks: {bp['first_breaking_rate']}{why}"
    )
    if bp["held_again_above_break"]:
        print(
            f"note: held again at {bp['held_again_above_break']}, above the break: the verdict is noisy here"
        )
    print(
        f"load average at start {meta['load_average_start']}, at end {meta['load_average_end']} "
        "(other load on the machine inflates every latency)"
    )
