"""Size and render time of report.html for a 100,000-operation run, and the plotting alternative.

  python bench/report_size.py [--ops 100000] [--out reports/bench/report]

Builds a run directory by hand (bench/rundir_gen.py: 2 history lines per operation, six faults),
drops 500 store rows so that the report has anomalies and traces to show, then measures:
- the report: seconds to write it (verdict first) and its size (goal: under 5 MB);
- Chromium: seconds from navigation to the load event, headless (tests/integration/chromium.py),
  and a full-page screenshot beside the report;
- plotting: the five plots' SVG, matplotlib (what the report uses) against pygal (the
  alternative measured), in bytes and seconds, on the same binned series.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from rundir_gen import generate  # noqa: E402

from harness import store  # noqa: E402
from harness.checkers.run import COMMITTED, Run  # noqa: E402
from harness.paths import reports_dir  # noqa: E402
from harness.report import plots, write_report  # noqa: E402
from tests.integration.chromium import open_page  # noqa: E402

DROPPED_ROWS = 500


def build(run_dir: Path, ops: int) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    generate(run_dir, ops * 2, seed=1)
    rows = (run_dir / store.STORE).read_text().splitlines(keepends=True)
    (run_dir / store.STORE).write_text("".join(rows[DROPPED_ROWS:]))


def matplotlib_plots(run: Run, end: float) -> tuple[int, float]:
    t0 = time.perf_counter()
    h, f = run.history, run.history.faults
    svgs = [
        plots.timeline(f, end),
        plots.intents_per_second(h.ops, f, end),
        plots.latency(h.ops, f, end, {"intent_ms": 100, "commit_ms": 500}),
        plots.buffers(run.samples, f, end, 256),
        plots.jetstream(run.samples, f, end),
        plots.peers_and_lag(run.samples, f, end),
    ]
    return sum(len(s.encode()) for s in svgs), time.perf_counter() - t0


def pygal_plots(run: Run, end: float) -> tuple[int, float]:
    """The same series, binned the same way, as pygal line charts (fault windows left out: pygal
    has no shaded spans, one reason it lost)."""
    import pygal

    t0 = time.perf_counter()
    ops = run.history.ops
    w = plots.bin_width(end)
    edges = np.arange(0.0, end + w, w)
    charts = []
    rate = pygal.Line(show_dots=False, width=900, height=260, x_label_rotation=0, show_minor_x_labels=False)
    for label, codes, _ in plots.OUTCOMES:
        t = ops.completed[np.isin(ops.code, codes) & ~np.isnan(ops.completed)]
        counts, _ = np.histogram(t, bins=edges)
        rate.add(label, [float(c) / w for c in counts])
    charts.append(rate)
    committed = ops.code == COMMITTED
    for t, values in (
        (ops.invoked, ops.quorum_ms.astype(np.float64)),
        (ops.invoked[committed], (ops.completed[committed] - ops.invoked[committed]) * 1000.0),
    ):
        x, p50, p99 = plots._binned_percentiles(t, values, w)
        chart = pygal.Line(show_dots=False, width=900, height=260)
        chart.add("p50", [float(v) for v in p50])
        chart.add("p99", [float(v) for v in p99])
        charts.append(chart)
    for field in ("buffer_depth", "peers_reachable"):
        chart = pygal.Line(show_dots=False, width=900, height=260)
        for source in sorted(s for s in run.samples if s.startswith("agent-")):
            chart.add(source, [getattr(s, field) for s in run.samples[source]])
        charts.append(chart)
    js = run.samples.get("jetstream", [])
    chart = pygal.Line(show_dots=False, width=900, height=260)
    chart.add("stream messages", [s.stream_msgs for s in js])
    chart.add("backlog", [s.consumer_backlog for s in js])
    charts.append(chart)
    size = sum(len(c.render()) for c in charts)
    return size, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=reports_dir() / "bench" / "report")
    args = ap.parse_args()
    run_dir = args.out / "run"
    build(run_dir, args.ops)
    t0 = time.perf_counter()
    report = write_report(run_dir)
    write_s = time.perf_counter() - t0
    verdict = json.loads((run_dir / store.VERDICT).read_text())
    visit = open_page(report, "({svgs: document.querySelectorAll('svg').length})", run_dir / "report.png")
    run = Run(run_dir)
    end = run.history.end
    mpl_bytes, mpl_s = matplotlib_plots(run, end)
    pg_bytes, pg_s = pygal_plots(run, end)
    figures = {
        "ops": args.ops,
        "history_lines": args.ops * 2,
        "anomalies": len(verdict["anomalies"]),
        "report_bytes": report.stat().st_size,
        "report_write_s": round(write_s, 2),
        "chromium_load_s": round(visit.load_s, 2),
        "chromium_console_errors": len(visit.console_errors),
        "chromium_requests": len(visit.requests),
        "svgs": visit.values.get("svgs"),
        "screenshot": str(run_dir / "report.png"),
        "plots_matplotlib": {"bytes": mpl_bytes, "seconds": round(mpl_s, 2)},
        "plots_pygal": {"bytes": pg_bytes, "seconds": round(pg_s, 2)},
    }
    (args.out / "figures.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
