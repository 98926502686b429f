"""The report's analytics lag (docs/report.md): each applied change's `t` minus its row's write, read
from the versionstamp's wall-clock milliseconds, drawn under peers and stream lag when the run has
analytics.jsonl; absent without it; odd values leave the page standing."""

from __future__ import annotations

from html import unescape
from pathlib import Path

from harness import store
from harness.checkers.run import Change, Sample
from harness.report import plots, write_report
from tests.unit.rundirs import RunDir

T0 = 1_800_000_000.0  # the run's t = 0, Unix seconds


def _stamp(written_at: float) -> int:
    """A SurrealDB versionstamp for a write at run time `written_at`."""
    return int(round((T0 + written_at) * 1000)) << plots.STAMP_SHIFT


def _run(n: int = 4) -> RunDir:
    run = RunDir()
    for i in range(n):
        cid = f"c{i}"
        run.intent(cid, float(i))
        run.row(cid, stream_seq=i + 1)
        run.applied(cid, i + 0.75, versionstamp=_stamp(i + 0.5))  # 0.25 s behind the store
    run.sample(1.0, "agent-1", peers_reachable=2, buffer_depth=0)
    run.sample(1.0, "jetstream", consumer_num_pending=0)
    return run


def _page(run: RunDir, tmp_path: Path, t0: object = T0) -> str:
    path = run.write(tmp_path)
    store.write_json(path / store.TIMINGS, {"t0_unix": t0})
    return unescape(write_report(path).read_text())


def test_the_lag_is_the_applied_time_minus_the_stamps_write_time() -> None:
    changes = [
        Change("applied", t=2.0, versionstamp=_stamp(1.5)),
        Change("view", t=9.0),
        Change("gap", t=3.0, detail="swept"),
        Change("applied", t=3.0),  # no versionstamp: no lag to tell
    ]
    t, lag = plots.analytics_lag(plots.applied_times(changes), T0)
    assert list(t) == [2.0] and abs(lag[0] - 0.5) < 1e-3
    assert len(plots.analytics_lag(plots.applied_times(changes), None)[0]) == 0


def test_the_plot_has_the_analytics_lag_only_with_analytics_jsonl(tmp_path: Path) -> None:
    html = _page(_run(), tmp_path / "a")
    assert "beside stream lag and analytics lag (behind the store)" in html
    assert "analytics lag s" in html and "p99 (over the run 0.25 s)" in html
    run = _run()
    run.analytics = None
    html = _page(run, tmp_path / "b")
    assert "Peers reachable per agent, beside stream lag</figcaption>" in html
    assert "analytics lag" not in html


def test_odd_values_leave_the_plot_and_the_page_standing(tmp_path: Path) -> None:
    samples = {"jetstream": [Sample(t=1.0, source="jetstream", consumer_num_pending=0)]}
    changes = [
        Change("applied", t=1.0, versionstamp=_stamp(0.75)),
        Change("applied", t=1.0, versionstamp=-5),
        Change("applied", t=1.0, versionstamp=2**63 - 1),  # written far in the future
        Change("applied", t=1e300, versionstamp=_stamp(1.0)),
    ]
    times = plots.applied_times(changes)
    html = unescape(plots.peers_and_lag(samples, [], 10.0, times, T0))
    assert "<svg" in html and "p99 (over the run 0.25 s)" in html
    assert "applied before their stamp's time" in html and "analytics lag values not drawn" in html
    html = unescape(plots.peers_and_lag(samples, [], 10.0, times, float("nan")))  # no usable t0_unix
    assert "<svg" in html and "no analytics lag" in html
    run = _run()
    run.analytics = [{"t": 1.0, "type": "applied", "versionstamp": "big"}]  # a malformed file
    html = _page(run, tmp_path)
    assert "Incomplete" in html and f"{store.ANALYTICS}:1" in html
    assert "Peers reachable per agent, beside stream lag</figcaption>" in html
