"""The report's plots on odd data: text from the data shown as written (never mathtext, never
dropped for a leading underscore), and a notice saying what is missing where a plot cannot be
drawn, never an exception."""

from __future__ import annotations

import math
from html import unescape
from pathlib import Path

import numpy as np

from harness.checkers.run import Fault, Ops, Sample
from harness.report import plots, write_report
from tests.unit.rundirs import RunDir

MATH = r"$\foo$ and $x^2$"


def _ops(invoked: list[float], completed: list[float], code: int = 1) -> Ops:
    n = len(invoked)
    return Ops(
        cid=np.arange(n, dtype=np.int64),
        code=np.full(n, code, dtype=np.int8),
        seq=np.arange(n, dtype=np.int64),
        invoked=np.array(invoked, dtype=np.float64),
        completed=np.array(completed, dtype=np.float64),
        quorum_ms=np.full(n, 5.0, dtype=np.float32),
    )


def test_text_from_the_data_is_never_read_as_mathematics(tmp_path: Path) -> None:
    run = RunDir(name=MATH, description=MATH)
    run.intent("c1", 1.0)
    run.start(MATH, 2.0, MATH, target={"node": MATH}).stop(MATH, 3.0, MATH)
    run.sample(1.0, f"agent-{MATH}", buffer_depth=1, peers_reachable=2, rss_bytes=2**20, open_fds=3)
    run.sample(1.0, MATH, rss_bytes=2**20, open_fds=3)
    run.sample(1.0, "jetstream", stream_msgs=1, stream_bytes=10, consumer_num_pending=0)
    html = write_report(run.write(tmp_path)).read_text()
    assert "not drawn" not in html
    svgs = "".join(html.split("<svg")[1:])
    # The fault's label on the timeline, the sources in the legends: each as written.
    assert svgs.count(MATH) >= 4


def test_a_label_from_the_data_with_a_leading_underscore_is_shown() -> None:
    samples = {"_agent": [Sample(t=1.0, source="_agent", rss_bytes=2**20, open_fds=3)]}
    assert "_agent" in plots.resources(samples, [], 10.0)


def test_a_plot_without_data_is_a_notice_saying_what_is_missing() -> None:
    html = plots.buffers({}, [], 10.0, 256)
    assert "<svg" not in html
    assert "Pending-commit buffers: not drawn: no agent sample with a buffer_depth" in html
    assert "no jetstream sample" in plots.jetstream({}, [], 10.0)
    assert "no sample with an rss_bytes" in plots.resources({}, [], 10.0)
    assert "no client operation" in plots.intents_per_second(_ops([], []), [], 10.0)
    assert "<svg" in plots.timeline([], 10.0)  # no faults: a timeline that says so


def test_values_that_cannot_be_drawn_are_left_out_and_counted() -> None:
    agent = [
        Sample(t=1.0, source="agent-1", buffer_depth=1e308),
        Sample(t=2.0, source="agent-1", buffer_depth=-1e300),
        Sample(t=math.inf, source="agent-1", buffer_depth=1),
        Sample(t=3.0, source="agent-1", buffer_depth=math.nan),
        Sample(t=4.0, source="agent-1", buffer_depth=2),
    ]
    html = plots.buffers({"agent-1": agent}, [], 10.0, math.inf)
    assert "4 buffer_depth values not drawn" in html and "<svg" in html
    only_bad = plots.buffers({"agent-1": agent[:2]}, [], 10.0, None)
    assert "<svg" not in only_bad and "no agent sample with a buffer_depth" in only_bad


def test_a_run_end_or_fault_times_that_are_not_times_still_draw() -> None:
    fault = Fault("f1", "partition", 1e300, -1e300, scheduled=math.nan, target={"links": 5})
    for end in (math.inf, math.nan, 1e308, -5.0):
        html = plots.timeline([fault, Fault("f2", "crash", 1.0, 2.0)], end)
        assert "<svg" in html, html[:300]
        assert "f2 crash" in html
    assert "the run's end (inf) is not a usable time" in unescape(plots.timeline([], math.inf))
    huge = plots.intents_per_second(_ops([1.0, 2.0, 1e300], [1.1, math.nan, 1e301]), [fault], 1e308)
    assert "<svg" in huge and "1 answer t values not drawn" in huge


def test_one_source_draws_its_plot_and_says_what_is_missing() -> None:
    samples = {"jetstream": [Sample(t=1.0, source="jetstream", consumer_num_pending=3)]}
    html = plots.peers_and_lag(samples, [], 10.0)
    assert "<svg" in html and "no agent sample with a peers_reachable" in html
    assert "<svg" in plots.jetstream(samples, [], 10.0)


def test_a_fault_target_of_any_shape_has_a_label() -> None:
    labels = [
        plots.fault_label(Fault("f1", "partition", 1.0, None, target=target))
        for target in ({"links": 5}, {"groups": [1, ["a", 2]]}, {"links": "x>y"}, {"node": {"a": 1}}, [1])
    ]
    assert labels == [
        "f1 partition 5",
        "f1 partition 1 | a,2",
        "f1 partition x>y",
        "f1 partition {'a': 1}",
        "f1 partition",
    ]
    assert "<svg" in plots.timeline([Fault("f1", "partition", 1.0, None, target={"groups": 3})], 5.0)
