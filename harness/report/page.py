"""report.html: one self-contained page per scenario run, built from the run directory and its
verdict.json alone. No script, no font, no image is fetched: the CSS and the SVG plots are inline,
so the file opens anywhere, offline, as a CI artifact. Sections come in the order a reader needs
them: the verdict and its checks, the command that re-runs the run, the timeline of faults, the
plots, every anomaly with its cid's trace, and the containers' logs around each fault."""

from __future__ import annotations

import json
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from harness import store
from harness.checkers.run import Fault, Run, Trace
from harness.checkers.verdict import headline, word
from harness.report import plots
from harness.report.logs import LogFindings, LogLine, scan

SHOWN_ANOMALIES = 200  # rows of the anomaly table; the rest are counted
TRACED = 30  # anomalies whose cid gets a full trace
EDGE_BEFORE, EDGE_AFTER = 1.0, 2.0  # seconds of logs around a fault's start and stop
FIGURES_CHARS = 1500  # a check's figures as shown; verdict.json has them all

CSS = (Path(__file__).parent / "report.css").read_text()


def _h(value: Any) -> str:
    return escape(str(value), quote=True)


def _figures(result: dict[str, Any]) -> str:
    figures = {k: v for k, v in result.items() if k not in ("valid", "anomalies", "error")}
    text = json.dumps(figures, separators=(", ", ": "), default=str)
    if len(text) > FIGURES_CHARS:
        text = text[:FIGURES_CHARS] + " ... (verdict.json has the rest)"
    error = f"<br><b>error:</b> {_h(result['error'])}" if result.get("error") else ""
    return f"<code>{_h(text)}</code>{error}"


def _row(*cells: str) -> str:
    """A table row of cells already escaped."""
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _valid_class(valid: Any) -> str:
    return {True: "v-true", False: "v-false"}.get(valid, "v-unknown")


def rerun_of(scenario: dict[str, Any]) -> str:
    """The command scenario.json records (`rerun`), or the plain one from name and seed."""
    if isinstance(scenario.get("rerun"), str):
        return scenario["rerun"]
    return f"solar-chaos run scenarios/{scenario.get('name', '?')}.yaml --seed {scenario.get('seed', 0)}"


def _fault_nodes(f: Fault) -> frozenset[str] | None:
    """The nodes whose logs tell about this fault; None: every node."""
    target = f.target if isinstance(f.target, dict) else {}
    if "node" in target:
        return frozenset({str(target["node"])})
    if "links" in target:
        return frozenset(end for link in target["links"] for end in str(link).split(">"))
    if "groups" in target:
        return frozenset(str(n) for g in target["groups"] for n in g)
    return None


def _log_rows(lines: list[LogLine]) -> str:
    rows = "".join(
        _row("" if ln.t is None else f"{ln.t:.3f}", _h(ln.node), f"<code>{_h(ln.text)}</code>")
        for ln in lines
    )
    return f"<table><tr><th>t</th><th>container</th><th>line</th></tr>{rows}</table>" if rows else ""


def _trace(cid: str, kinds: list[str], trace: Trace | None, logs: LogFindings) -> str:
    events: list[tuple[float, str, str]] = []
    for op in trace.ops if trace else []:
        what = {k: v for k, v in op.items() if k not in ("t", "cid")}
        events.append((float(op.get("t", 0.0)), "history", json.dumps(what, default=str)))
    for ln in logs.by_cid.get(cid, []):
        events.append((ln.t if ln.t is not None else float("inf"), f"log {ln.node}", ln.text))
    events.sort(key=lambda e: e[0])
    rows = "".join(
        _row("" if t == float("inf") else f"{t:.3f}", _h(where), f"<code>{_h(what)}</code>")
        for t, where, what in events
    )
    more = logs.truncated.get(cid)
    landed = []
    for m in trace.messages if trace else []:
        landed.append(
            f"<li>stream seq {_h(m.get('seq'))}: <code>{_h(json.dumps(m, default=str))}</code></li>"
        )
    for r in trace.rows if trace else []:
        landed.append(f"<li>store row: <code>{_h(json.dumps(r, default=str))}</code></li>")
    where = "".join(landed) or "<li>neither in the stream nor in the store</li>"
    return (
        f"<details><summary><code>{_h(cid)}</code>: {_h(', '.join(kinds))}</summary>"
        f"<table><tr><th>t</th><th>where</th><th>what</th></tr>{rows}</table>"
        + (f"<p class=muted>{more} more log lines carry this cid</p>" if more else "")
        + f"<p>Where it landed:</p><ul>{where}</ul></details>"
    )


def build(run_dir: Path) -> str:
    """The page for one scenario's run directory (verdict.json must be there)."""
    run_dir = Path(run_dir)
    scenario = store.read_json(run_dir / store.SCENARIO)
    verdict = store.read_json(run_dir / store.VERDICT)
    timings_path = run_dir / store.TIMINGS
    timings = store.read_json(timings_path) if timings_path.is_file() else {}
    run = Run(run_dir)
    history = run.history
    end = max(history.end, float(scenario.get("load", {}).get("duration") or 0.0))
    faults = history.faults
    budgets = scenario.get("budgets") or {}
    cap = (scenario.get("topology") or {}).get("buffer_cap")

    anomalies = verdict.get("anomalies", [])
    kinds_of: dict[str, list[str]] = {}
    for a in anomalies:
        if a.get("cid"):
            kinds_of.setdefault(a["cid"], []).append(a["kind"])
    traced = list(kinds_of)[:TRACED]
    windows = []
    window_of: dict[tuple[int, str], int] = {}  # (fault's index, "start" or "stop"): its window
    for i, f in enumerate(faults):
        nodes = _fault_nodes(f)
        for label, edge in (("start", f.began), ("stop", f.stop)):
            if edge is not None:
                window_of[(i, label)] = len(windows)
                windows.append((edge - EDGE_BEFORE, edge + EDGE_AFTER, nodes))
    logs = scan(run_dir, traced, windows, timings.get("t0_unix"))

    sut = scenario.get("sut") or {}
    facts = [
        ("seed", scenario.get("seed")),
        ("run directory", run_dir),
        ("system under test", sut.get("image") or "netsync (built here)"),
    ]
    if sut.get("buggify"):
        facts.append(("planted bugs", ", ".join(sut["buggify"])))
    for key in ("bringup_s", "reset_s", "drive_s", "collect_s"):
        if key in timings:
            facts.append((key.replace("_s", " (s)"), timings[key]))
    dl = "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in facts)

    checks = "".join(
        f"<tr><td>{_h(name)}</td><td class={_valid_class(r.get('valid'))}>{word(r.get('valid'))}</td>"
        f"<td>{_figures(r)}</td></tr>"
        for name, r in verdict.get("checks", {}).items()
    )
    counts = Counter(a["kind"] for a in anomalies)
    rows = "".join(
        _row(_h(a["kind"]), f"<code>{_h(a.get('cid') or '')}</code>", _h(a["detail"]))
        for a in anomalies[:SHOWN_ANOMALIES]
    )
    more = len(anomalies) - SHOWN_ANOMALIES
    anomaly_html = (
        "<p>None.</p>"
        if not anomalies
        else "<p>"
        + ", ".join(f"{_h(k)} {n}" for k, n in sorted(counts.items()))
        + f"</p><table><tr><th>kind</th><th>cid</th><th>detail</th></tr>{rows}</table>"
        + (f"<p class=muted>... and {more} more (verdict.json has them all)</p>" if more > 0 else "")
    )
    traces = run.traces(hash(cid) for cid in traced)  # one pass over the files for all of them
    trace_html = "".join(_trace(cid, kinds_of[cid], traces.get(cid), logs) for cid in traced)
    if len(kinds_of) > TRACED:
        trace_html += (
            f"<p class=muted>{len(kinds_of) - TRACED} more cids with anomalies are not traced here.</p>"
        )

    fault_html = ""
    for i, f in enumerate(faults):
        parts = [f"<h3>{_h(plots.fault_label(f))}</h3>"]
        late = "" if f.scheduled is None else f", {f.start - f.scheduled:.3f} s after its schedule"
        stop = f"stopped at t={f.stop:.3f}" if f.stop is not None else "never stopped"
        parts.append(f"<p>started at t={f.start:.3f}{late}; {stop}.</p>")
        if f.evidence:
            parts.append(f"<p>evidence: <code>{_h(json.dumps(f.evidence))}</code></p>")
        for label in ("start", "stop"):
            if (i, label) not in window_of:
                continue
            lines = logs.by_window[window_of[(i, label)]]
            table = _log_rows(lines) or "<p class=muted>no timed log line</p>"
            parts.append(f"<details><summary>logs around its {label}</summary>{table}</details>")
        fault_html += "".join(parts)

    figures = [
        ("Intents answered per second, by outcome", plots.intents_per_second(history.ops, faults, end)),
        (
            "Latency: intent (quorum) and commit, p50 and p99",
            plots.latency(history.ops, faults, end, budgets),
        ),
        (
            "Pending-commit buffer depth per agent, against its cap",
            plots.buffers(run.samples, faults, end, cap),
        ),
        (
            "JetStream: stream messages and bytes against their limits, consumer pending",
            plots.jetstream(run.samples, faults, end, run.settings.max_msgs, run.settings.max_bytes),
        ),
        (
            "Every process's memory and open files (dotted: the leak check's fitted trend)",
            plots.resources(run.samples, faults, end),
        ),
        ("Peers reachable per agent, beside stream lag", plots.peers_and_lag(run.samples, faults, end)),
    ]
    figure_html = "".join(f"<figure><figcaption>{_h(c)}</figcaption>{svg}</figure>" for c, svg in figures)
    valid = verdict.get("valid")
    title = f"{scenario.get('name', run_dir.name)}: {word(valid)}"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{_h(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_h(scenario.get('name', run_dir.name))}</h1>"
        f"<p class='verdict {_valid_class(valid)}' id=verdict>{_h(headline(verdict))}</p>"
        f"<p>{_h(scenario.get('description') or '')}</p><dl>{dl}</dl>"
        "<h2 id=checks>Checks</h2>"
        f"<table><tr><th>check</th><th>verdict</th><th>figures</th></tr>{checks}</table>"
        f"<h2 id=rerun>Re-run it as it ran</h2><pre>{_h(rerun_of(scenario))}</pre>"
        f"<h2 id=timeline>Timeline</h2>{plots.timeline(faults, end)}"
        f"<h2 id=plots>Over time (fault windows shaded)</h2>{figure_html}"
        f"<h2 id=anomalies>Anomalies ({len(anomalies)})</h2>{anomaly_html}{trace_html}"
        f"<h2 id=faults>Around each fault</h2>{fault_html or '<p>No faults.</p>'}"
        "</body></html>"
    )
