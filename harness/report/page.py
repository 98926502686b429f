"""report.html: one self-contained page per scenario run, built from the run directory and its
verdict.json alone. No script, no font, no image is fetched: the CSS and the SVG plots are inline,
so the file opens anywhere, offline, as a CI artifact. Sections come in the order a reader needs
them: the verdict and its checks, the command that re-runs the run, the timeline of faults, the
plots, every anomaly with its cid's trace, and the containers' logs around each fault.

A run directory is untrusted data: every value from it is escaped for where it lands (text, a
quoted attribute), and a file that cannot be read leaves the rest of the page standing, with a
notice saying what is missing (`Page.problems`, which make `report` exit 2)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from harness import store
from harness.checkers.run import Fault, History, Ops, Run, Sample, Trace
from harness.checkers.settings import Settings
from harness.checkers.verdict import headline, word
from harness.report import plots
from harness.report.drawing import notice
from harness.report.inputs import number, read_scenario, read_timings, section, text
from harness.report.logs import LogFindings, LogLine, scan

T = TypeVar("T")

SHOWN_ANOMALIES = 200  # rows of the anomaly table; the rest are counted
TRACED = 30  # anomalies whose cid gets a full trace
EDGE_BEFORE, EDGE_AFTER = 1.0, 2.0  # seconds of logs around a fault's start and stop
FIGURES_CHARS = 1500  # a check's figures as shown; verdict.json has them all

CSS = (Path(__file__).parent / "report.css").read_text()


def _h(value: Any) -> str:
    """Escaped for HTML text and for a quoted attribute alike."""
    return escape(value if isinstance(value, str) else text(value), quote=True)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(", ", ": "), default=str)
    except (ValueError, RecursionError):  # nested past what json writes
        return text(value)


def _figures(result: dict[str, Any]) -> str:
    figures = {k: v for k, v in result.items() if k not in ("valid", "anomalies", "error")}
    shown = _json(figures)
    if len(shown) > FIGURES_CHARS:
        shown = shown[:FIGURES_CHARS] + " ... (verdict.json has the rest)"
    error = f"<br><b>error:</b> {_h(text(result['error']))}" if result.get("error") else ""
    return f"<code>{_h(shown)}</code>{error}"


def _row(*cells: str) -> str:
    """A table row of cells already escaped."""
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _valid_class(valid: Any) -> str:
    return {True: "v-true", False: "v-false"}.get(valid, "v-unknown")


def rerun_of(scenario: dict[str, Any]) -> str:
    """The command scenario.json records (`rerun`), or the plain one from name and seed."""
    if isinstance(scenario.get("rerun"), str):
        return text(scenario["rerun"])
    name, seed = text(scenario.get("name", "?"), 200), text(scenario.get("seed", 0), 40)
    return f"solar-chaos run scenarios/{name}.yaml --seed {seed}"


def _fault_nodes(f: Fault) -> frozenset[str] | None:
    """The nodes whose logs tell about this fault; None: every node."""
    target = f.target if isinstance(f.target, dict) else {}

    def items(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    if "node" in target:
        return frozenset({text(target["node"], 200)})
    if "links" in target:
        return frozenset(end for link in items(target["links"]) for end in text(link, 400).split(">"))
    if "groups" in target:
        return frozenset(text(n, 200) for g in items(target["groups"]) for n in items(g))
    return None


def _t(t: float | None) -> str:
    return "" if t is None or not math.isfinite(t) else f"{t:.3f}"


def _log_rows(lines: list[LogLine]) -> str:
    rows = "".join(_row(_t(ln.t), _h(ln.node), f"<code>{_h(ln.text)}</code>") for ln in lines)
    return f"<table><tr><th>t</th><th>container</th><th>line</th></tr>{rows}</table>" if rows else ""


def _trace(cid: str, kinds: list[str], trace: Trace | None, logs: LogFindings) -> str:
    events: list[tuple[float, str, str]] = []
    for op in trace.ops if trace else []:
        what = {k: v for k, v in op.items() if k not in ("t", "cid")}
        t = number(op.get("t"))
        events.append((math.inf if t is None else t, "history", text(_json(what))))
    for ln in logs.by_cid.get(cid, []):
        events.append((ln.t if ln.t is not None else math.inf, f"log {ln.node}", ln.text))
    events.sort(key=lambda e: e[0])
    rows = "".join(_row(_t(t), _h(where), f"<code>{_h(what)}</code>") for t, where, what in events)
    more = logs.truncated.get(cid)
    landed = []
    for m in trace.messages if trace else []:
        landed.append(f"<li>stream seq {_h(text(m.get('seq'), 40))}: <code>{_h(text(_json(m)))}</code></li>")
    for r in trace.rows if trace else []:
        landed.append(f"<li>store row: <code>{_h(text(_json(r)))}</code></li>")
    where = "".join(landed) or "<li>neither in the stream nor in the store</li>"
    return (
        f"<details><summary><code>{_h(text(cid, 200))}</code>: {_h(', '.join(kinds))}</summary>"
        f"<table><tr><th>t</th><th>where</th><th>what</th></tr>{rows}</table>"
        + (f"<p class=muted>{more} more log lines carry this cid</p>" if more else "")
        + f"<p>Where it landed:</p><ul>{where}</ul></details>"
    )


@dataclass
class Page:
    html: str
    problems: list[str] = field(default_factory=list)  # inputs it could not read: each shown on it


class _Reader:
    """The run's facts for the page, each read once; one that cannot be read is a problem (named on
    the page) and a stand-in, so the rest of the page is still built."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.problems: list[str] = []

    def get(self, what: str, read: Callable[[], T], instead: T) -> T:
        try:
            return read()
        except Exception as e:  # the page is built whatever one file holds
            problem = str(e) if isinstance(e, store.RunDirError) else f"{what}: {type(e).__name__}: {e}"
            if not any(problem in p for p in self.problems):
                self.problems.append(problem)
            return instead

    def part(self, what: str, build: Callable[[], str]) -> str:
        """A section of the page, or in its place a notice of what the data made fail: one odd value
        costs its section, never the page."""
        try:
            return build()
        except Exception as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            self.problems.append(f"{self.run.path}: {what}: {reason}")
            return notice(f"{what}: not shown: {reason}")


def _faults_html(faults: list[Fault], logs: LogFindings, window_of: dict[tuple[int, str], int]) -> str:
    out = ""
    for i, f in enumerate(faults):
        parts = [f"<h3>{_h(text(plots.fault_label(f), 400))}</h3>"]
        late = "" if number(f.scheduled) is None else f", {f.start - f.scheduled:.3f} s after its schedule"
        stop = f"stopped at t={f.stop:.3f}" if f.stop is not None else "never stopped"
        parts.append(f"<p>started at t={f.start:.3f}{late}; {stop}.</p>")
        if f.evidence:
            parts.append(f"<p>evidence: <code>{_h(text(_json(f.evidence)))}</code></p>")
        for label in ("start", "stop"):
            if (i, label) not in window_of:
                continue
            table = _log_rows(logs.by_window[window_of[(i, label)]]) or "<p class=muted>no timed log line</p>"
            parts.append(f"<details><summary>logs around its {label}</summary>{table}</details>")
        out += "".join(parts)
    return out


def _anomalies_html(anomalies: list[dict[str, Any]]) -> str:
    if not anomalies:
        return "<p>None.</p>"
    counts = Counter(a["kind"] for a in anomalies)
    rows = "".join(
        _row(
            _h(text(a["kind"], 200)),
            f"<code>{_h(text(a.get('cid') or '', 200))}</code>",
            _h(text(a["detail"])),
        )
        for a in anomalies[:SHOWN_ANOMALIES]
    )
    more = len(anomalies) - SHOWN_ANOMALIES
    return (
        "<p>"
        + ", ".join(f"{_h(text(k, 200))} {n}" for k, n in sorted(counts.items()))
        + f"</p><table><tr><th>kind</th><th>cid</th><th>detail</th></tr>{rows}</table>"
        + (f"<p class=muted>... and {more} more (verdict.json has them all)</p>" if more > 0 else "")
    )


def render(
    run_dir: Path, verdict: dict[str, Any], verdict_note: str | None = None, problems: list[str] | None = None
) -> Page:
    """The page for one scenario's run directory and its verdict (inputs.verdict_for), whatever its
    files hold; `problems`: what is already known to be unreadable."""
    run_dir = Path(run_dir)
    run = Run(run_dir)
    read = _Reader(run)
    read.problems += problems or []
    scenario = read_scenario(run_dir, read.problems)
    timings = read_timings(run_dir, read.problems)
    history = read.get("history", lambda: run.history, None)
    samples = read.get("samples", lambda: run.samples, None)
    settings = read.get("scenario", lambda: run.settings, None)
    faults = history.faults if history else []
    horizon = settings.horizon_s if settings else None
    end = max(history.end if history else 0.0, number(horizon) or 0.0)

    anomalies = verdict["anomalies"]
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
    read.problems += logs.unread

    sut = section(scenario, "sut")
    facts: list[tuple[str, Any]] = [
        ("seed", text(scenario.get("seed"), 40)),
        ("run directory", run_dir),
        ("system under test", text(sut.get("image") or "netsync (built here)", 400)),
    ]
    if sut.get("buggify"):
        bugs = sut["buggify"] if isinstance(sut["buggify"], list) else [sut["buggify"]]
        facts.append(("planted bugs", text(", ".join(map(text, bugs)), 400)))
    for key in ("bringup_s", "reset_s", "drive_s", "collect_s"):
        if key in timings:
            facts.append((key.replace("_s", " (s)"), timings[key]))
    dl = "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in facts)

    checks = read.part(
        "the checks",
        lambda: "".join(
            f"<tr><td>{_h(text(name, 200))}</td>"
            f"<td class={_valid_class(r.get('valid'))}>{word(r.get('valid'))}</td><td>{_figures(r)}</td></tr>"
            for name, r in verdict["checks"].items()
        ),
    )
    traces = read.get("traces", lambda: run.traces(hash(cid) for cid in traced), {})
    trace_html = read.part(
        "the cids' traces", lambda: "".join(_trace(c, kinds_of[c], traces.get(c), logs) for c in traced)
    )
    if len(kinds_of) > TRACED:
        trace_html += (
            f"<p class=muted>{len(kinds_of) - TRACED} more cids with anomalies are not traced here.</p>"
        )

    anomaly_html = read.part("the anomalies", lambda: _anomalies_html(anomalies))
    fault_html = read.part("the faults", lambda: _faults_html(faults, logs, window_of))
    changes = run.changes()  # analytics.jsonl, a line at a time (a soak's is a hundred megabytes)
    times = None if changes is None else read.get("analytics", lambda: plots.applied_times(changes), None)
    lag = (times, timings.get("t0_unix"))
    figures = _figures_of(history, samples, settings, faults, end, lag)
    figure_html = "".join(f"<figure><figcaption>{_h(c)}</figcaption>{svg}</figure>" for c, svg in figures)
    valid = verdict["valid"]
    name = text(scenario.get("name") or run_dir.name, 200)
    unread = "".join(notice(f"Incomplete: {p}") for p in read.problems)
    if verdict_note:
        unread += notice(verdict_note)
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{_h(name)}: {word(valid)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_h(name)}</h1>"
        f"<p class='verdict {_valid_class(valid)}' id=verdict>{_h(headline(verdict))}</p>"
        f"<div id=problems>{unread}</div>"
        f"<p>{_h(text(scenario.get('description') or ''))}</p><dl>{dl}</dl>"
        "<h2 id=checks>Checks</h2>"
        f"<table><tr><th>check</th><th>verdict</th><th>figures</th></tr>{checks}</table>"
        f"<h2 id=rerun>Re-run it as it ran</h2><pre>{_h(rerun_of(scenario))}</pre>{_shrunk(run_dir)}"
        f"<h2 id=timeline>Timeline</h2>{_timeline(history, faults, end)}"
        f"<h2 id=plots>Over time (fault windows shaded)</h2>{figure_html}"
        f"<h2 id=anomalies>Anomalies ({len(anomalies)})</h2>{anomaly_html}{trace_html}"
        f"<h2 id=faults>Around each fault</h2>{fault_html or '<p>No faults.</p>'}"
        "</body></html>"
    )
    return Page(html, read.problems)


SHRUNK_NOTE_BYTES = 4096  # of minimal.yaml's opening comment, shown as text


def _shrunk(run_dir: Path) -> str:
    """A link to what `solar-chaos shrink` made of this run (shrink/minimal.yaml, shrink/minimal.html),
    when those are plain files: a run directory is untrusted, so a link or anything else is ignored."""
    folder = run_dir / "shrink"
    minimal, page = folder / "minimal.yaml", folder / "minimal.html"
    if folder.is_symlink() or minimal.is_symlink() or not minimal.is_file():
        return ""
    with open(minimal, "rb") as f:
        head = f.read(SHRUNK_NOTE_BYTES).decode("utf-8", errors="replace")
    note = "\n".join(line[2:] for line in head.splitlines() if line.startswith("# "))
    link = (
        "<a href='shrink/minimal.html'>its report</a>, " if page.is_file() and not page.is_symlink() else ""
    )
    return (
        f"<h2 id=shrunk>Shrunk</h2><p>The smallest schedule that still fails: {link}"
        f"<a href='shrink/minimal.yaml'>the scenario file</a>.</p>"
        f"<pre>{_h(text(note, SHRUNK_NOTE_BYTES))}</pre>"
    )


def _timeline(history: History | None, faults: list[Fault], end: float) -> str:
    if history is None:
        return notice("The timeline of faults: not drawn: history.jsonl could not be read")
    return plots.timeline(faults, end)


def _figures_of(
    history: History | None,
    samples: dict[str, list[Sample]] | None,
    settings: Settings | None,
    faults: list[Fault],
    end: float,
    lag: tuple[tuple[np.ndarray, np.ndarray] | None, float | None] = (None, None),
) -> list[tuple[str, str]]:
    """Each plot's caption and SVG, or the notice of why it is not drawn; `lag`: analytics.jsonl's
    `plots.applied_times` (None: no such file, or unreadable) and timings.json's t0_unix, for the
    analytics lag beside the stream's."""
    budgets = {"intent_ms": settings.intent_ms, "commit_ms": settings.commit_ms} if settings else {}
    limits = (settings.max_msgs, settings.max_bytes) if settings else (None, None)
    cap = settings.buffer_cap if settings else None

    def of_history(draw: Callable[[Ops], str]) -> str:
        return draw(history.ops) if history else notice("Not drawn: history.jsonl could not be read")

    def of_samples(draw: Callable[[dict[str, list[Sample]]], str]) -> str:
        return draw(samples) if samples is not None else notice("Not drawn: samples.jsonl could not be read")

    return [
        (
            "Intents answered per second, by outcome",
            of_history(lambda ops: plots.intents_per_second(ops, faults, end)),
        ),
        (
            "Latency: intent (quorum) and commit, p50 and p99",
            of_history(lambda ops: plots.latency(ops, faults, end, budgets)),
        ),
        (
            "Pending-commit buffer depth per agent, against its cap",
            of_samples(lambda s: plots.buffers(s, faults, end, cap)),
        ),
        (
            "JetStream: stream messages and bytes against their limits, consumer pending",
            of_samples(lambda s: plots.jetstream(s, faults, end, *limits)),
        ),
        (
            "Every process's memory and open files (dotted: the leak check's fitted trend)",
            of_samples(lambda s: plots.resources(s, faults, end)),
        ),
        (
            "Peers reachable per agent, beside stream lag"
            + (" and analytics lag (behind the store)" if lag[0] is not None else ""),
            of_samples(lambda s: plots.peers_and_lag(s, faults, end, *lag)),
        ),
    ]
