"""The telemetry check on hand-made run directories (../shared/RUN-FORMAT.md, telemetry.jsonl): an agent
the scout stops hearing in a healthy window is telemetry-silent, a summary whose buffer depth none of
the agent's own samples comes near is telemetry-mismatch; faults excuse both; no file, no check."""

from __future__ import annotations

from pathlib import Path

from harness import store
from tests.unit.judging import assert_only, check, details
from tests.unit.rundirs import RunDir, append_line

AGENTS = ("agent-1", "agent-2")


def gossiping(until: float = 20.0, depth: int = 0) -> RunDir:
    """A run of `until` seconds: an intent each second, each agent sampled each second at `depth`
    (0 at the end, so allowed to drain until then)."""
    run = RunDir(expect={"drained_within_s": until + 1})
    for i in range(int(until)):
        run.intent(f"ok-{i}", float(i))
        for agent in AGENTS:
            run.sample(float(i), agent, buffer_depth=depth, buffer_cap=256)
    run.agents_drained(until, AGENTS)
    return run


def summaries(run: RunDir, start: int, stop: int, *, silent: tuple[str, ...] = (), depth: int = 0) -> RunDir:
    for i in range(start, stop):
        heard = {
            a.replace("-", "_"): {"samples": 1, "buffer_depth_max": depth} for a in AGENTS if a not in silent
        }
        run.summary(float(i), float(i + 1), **heard)
    return run


def test_a_scout_that_hears_every_agent_every_interval_is_valid(tmp_path: Path) -> None:
    v = check(summaries(gossiping(), 0, 20), tmp_path)
    assert_only(v)
    t = v["checks"]["telemetry"]
    assert t["summaries"] == 20 and t["interval_s"] == 1.0
    assert t["longest_silence_s"] == {"agent-1": 0.0, "agent-2": 0.0}
    assert t["summaries_judged"] > 0


def test_without_telemetry_jsonl_the_check_is_not_run(tmp_path: Path) -> None:
    v = check(gossiping(), tmp_path)
    assert_only(v)
    assert v["checks"]["telemetry"]["judged"] is False


def test_an_agent_missing_from_summaries_for_three_intervals_is_silent(tmp_path: Path) -> None:
    run = summaries(gossiping(), 0, 8)
    summaries(run, 8, 12, silent=("agent-2",))  # 4 s unheard
    summaries(run, 12, 20)
    v = check(run, tmp_path)
    assert_only(v, ("telemetry-silent", None))
    assert "agent-2: in no summary from t=8 to t=12" in details(v, "telemetry-silent")[0]


def test_two_missed_intervals_are_not_silence(tmp_path: Path) -> None:
    run = summaries(gossiping(), 0, 8)
    summaries(run, 8, 10, silent=("agent-2",))
    summaries(run, 10, 20)
    assert_only(check(run, tmp_path))


def test_an_empty_telemetry_file_makes_every_agent_silent(tmp_path: Path) -> None:
    """A scout that published nothing while the agents gossiped: telemetry.jsonl is there, empty."""
    run = gossiping()
    run.telemetry = []
    v = check(run, tmp_path)
    assert_only(v, ("telemetry-silent", None), ("telemetry-silent", None))
    assert sorted(d.split(":")[0] for d in details(v, "telemetry-silent")) == list(AGENTS)


def test_silence_during_a_fault_and_its_grace_is_not_judged(tmp_path: Path) -> None:
    run = summaries(gossiping(), 0, 5)
    run.start("f1", 5.0, "partition").stop("f1", 8.0)  # healthy again from 13 (5 s of grace)
    run.sample(6.5, "agent-2", buffer_depth=3, buffer_cap=256)  # the fault bit
    summaries(run, 5, 13, silent=("agent-2",))
    summaries(run, 13, 20)
    v = check(run, tmp_path)
    assert_only(v)
    # Not judged, but measured: the silence the fault caused, from 5 to the grace's end at 13.
    assert v["checks"]["telemetry"]["fault_silence_s"] == {"agent-1": 0.0, "agent-2": 8.0}


def test_a_summary_whose_depth_no_sample_comes_near_is_a_mismatch(tmp_path: Path) -> None:
    run = summaries(gossiping(), 0, 10)
    summaries(run, 10, 11, depth=50)  # the agents' samples say 0 all along
    summaries(run, 11, 20)
    v = check(run, tmp_path)
    assert_only(v, ("telemetry-mismatch", None), ("telemetry-mismatch", None))
    assert "says buffer_depth_max 50" in details(v, "telemetry-mismatch")[0]


def test_a_depth_within_the_tolerance_is_no_mismatch(tmp_path: Path) -> None:
    """The scout's max and the sampler's readings are taken at different instants: 2 entries apart,
    or a tenth of the depth, is the same reading."""
    run = summaries(gossiping(depth=40), 0, 20, depth=44)
    v = check(run, tmp_path)
    assert_only(v)
    assert v["checks"]["telemetry"]["summaries_judged"] > 0


def burst(depth: int) -> RunDir:
    """20 s of intents, every agent's buffer read empty each second but at t=10, where it reads `depth`."""
    run = RunDir(expect={"drained_within_s": 30})
    for i in range(20):
        run.intent(f"ok-{i}", float(i))
        for agent in AGENTS:
            run.sample(float(i), agent, buffer_depth=depth if i == 10 else 0, buffer_cap=256)
    run.agents_drained(20.0, AGENTS)
    return run


def test_a_depth_between_two_samples_of_a_draining_buffer_is_no_mismatch(tmp_path: Path) -> None:
    """A buffer drained from 27 to 0 between two samples passed through 10 (flapping-nats)."""
    run = burst(27)
    summaries(run, 0, 11)
    summaries(run, 11, 12, depth=10)
    summaries(run, 12, 20)
    v = check(run, tmp_path)
    assert_only(v)


def test_a_peak_between_two_readings_of_a_moving_buffer_is_no_mismatch(tmp_path: Path) -> None:
    """Readings of 0 and 17 a second apart: the buffer moves 17 a second, so between two readings it may
    have passed 17 by up to half that (nats-minority-partition: a summary's 20); a summary far past that
    pace is still a mismatch."""
    for said, anomalies in ((20, ()), (40, (("telemetry-mismatch", None),))):
        run = burst(17)
        summaries(run, 0, 10)
        summaries(run, 10, 11, depth=said)
        summaries(run, 11, 20)
        v = check(run, tmp_path / str(said))
        assert_only(v, *anomalies * len(AGENTS))


def test_a_malformed_summary_names_the_file_and_line(tmp_path: Path) -> None:
    path = summaries(gossiping(), 0, 3).write(tmp_path)
    line = append_line(path, store.TELEMETRY, {"t": 4.0, "window_start": "soon", "window_end": 4.0})
    from harness.checkers import judge

    v = judge(path)
    assert v["checks"]["telemetry"]["valid"] == "unknown"
    assert f"{store.TELEMETRY}:{line}" in v["checks"]["telemetry"]["error"]
    assert "window_start" in v["checks"]["telemetry"]["error"]


def test_a_fifo_at_telemetry_jsonl_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A hostile run directory: a FIFO there would hang the read (as for every file of the format)."""
    import os

    from harness.checkers import judge

    path = gossiping().write(tmp_path)
    os.mkfifo(path / store.TELEMETRY)
    telemetry = judge(path)["checks"]["telemetry"]
    assert telemetry["valid"] == "unknown"
    assert store.TELEMETRY in telemetry["error"] and "not a regular file" in telemetry["error"]
