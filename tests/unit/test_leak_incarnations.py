"""The leak check across restarts: each incarnation of a process (its samples' `started`) is judged on its
own, so a crash that resets a leaking process's memory cannot hide the leak, and a restart of a clean
one does not look like one."""

from __future__ import annotations

from pathlib import Path

from harness.checkers import judge
from harness.observe.processes import proc_sample
from tests.unit.rundirs import RunDir

CRASH_AT = 900  # the nemesis kills the agent; it is back 10 s later with its memory as at start


def _run(leak_per_s: float, *, started: bool = True, end: int = 1800) -> RunDir:
    run = RunDir()
    for i in range(5):
        run.intent(f"a{i}", 1.0 + i)
    for t in range(0, end + 1, 10):
        if CRASH_AT <= t < CRASH_AT + 10:
            continue  # down: no sample
        since = t if t < CRASH_AT else t - CRASH_AT - 10
        extra = {"started": 1000.0 if t < CRASH_AT else 1000.0 + CRASH_AT + 10} if started else {}
        run.sample(float(t), "agent-1", buffer_depth=0, buffer_cap=256, open_fds=31, **extra,
                   rss_bytes=80e6 + leak_per_s * since)  # fmt: skip
    return run


def test_a_leak_that_a_crash_resets_is_still_found_in_each_incarnation(tmp_path: Path) -> None:
    v = judge(_run(100e3).write(tmp_path))  # 100 kB/s: about 70 MB over each judged span
    leaks = [a["detail"] for a in v["anomalies"] if a["kind"] == "leak"]
    assert len(leaks) == 2, v["anomalies"]
    assert "of the incarnation that started at t=0s" in leaks[0]
    assert "of the incarnation that started at t=910s" in leaks[1]
    assert v["checks"]["leak"]["judged"]["agent-1.rss_bytes"] > 32 * 2**20


def test_without_start_times_the_saw_is_fitted_as_one_line_and_the_leak_is_missed(tmp_path: Path) -> None:
    """What the check did before `started`: the reason it exists."""
    v = judge(_run(100e3, started=False).write(tmp_path))
    assert not [a for a in v["anomalies"] if a["kind"] == "leak"]


def test_a_clean_process_restarted_is_no_leak(tmp_path: Path) -> None:
    run = _run(0.0)
    v = judge(run.write(tmp_path))
    assert v["valid"] is True, v["anomalies"]
    assert v["checks"]["leak"]["judged"]["agent-1.rss_bytes"] == 0.0


def test_proc_sample_gives_a_start_time_that_tells_processes_apart() -> None:
    me = proc_sample("self")
    init = proc_sample(1)
    assert me is not None and init is not None
    assert me["started"] > init["started"] >= 0  # clock ticks after boot: this process began later
