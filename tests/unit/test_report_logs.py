"""The report's log scan on hand-made logs: each window its own (two faults that start together),
the same lines as a plain look at every window, and logs that are not plain files or plain lines."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

from harness import store
from harness.report import write_report
from harness.report.logs import PER_WINDOW, line_time, scan
from tests.unit.rundirs import RunDir

T0 = 1_800_000_000.0


def _log(folder: Path, node: str, lines: list[dict | str]) -> None:
    logs = folder / store.LOGS
    logs.mkdir(exist_ok=True)
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    (logs / f"{node}.log").write_text(text)


def _section(html: str, title: str) -> str:
    """A fault's part of the page: from its heading to the next."""
    start = html.index(f"<h3>{title}")
    end = html.find("<h3>", start + 4)
    return html[start : end if end != -1 else len(html)]


def test_two_faults_that_start_together_each_show_their_own_nodes_logs(tmp_path: Path) -> None:
    run = RunDir(name="together")
    run.intent("c1", 1.0)
    run.start("f1", 2.5, "crash", target={"node": "agent-1"}).stop("f1", 20.0, "crash")
    run.start("f2", 2.5, "pause", target={"node": "agent-2"}).stop("f2", 30.0, "pause")
    path = run.agents_drained(31.0).write(tmp_path, "together")
    store.write_json(path / store.TIMINGS, {"t0_unix": T0})
    _log(path, "agent-1", [{"t": T0 + 3.0, "msg": "agent-one-was-crashed"}])
    _log(path, "agent-2", [{"t": T0 + 3.0, "msg": "agent-two-was-paused"}])
    html = write_report(path).read_text()
    one, two = _section(html, "f1 crash agent-1"), _section(html, "f2 pause agent-2")
    assert "agent-one-was-crashed" in one and "agent-two-was-paused" not in one
    assert "agent-two-was-paused" in two and "agent-one-was-crashed" not in two


def test_equal_windows_each_keep_their_own_lines(tmp_path: Path) -> None:
    _log(tmp_path, "nats", [{"t": T0 + 1.0 + i / 100, "msg": f"line {i}"} for i in range(50)])
    found = scan(tmp_path, [], [(0.0, 5.0, None), (0.0, 5.0, None), (0.0, 5.0, frozenset({"x"}))], T0)
    assert [len(w) for w in found.by_window] == [PER_WINDOW, PER_WINDOW, 0]
    assert found.by_window[0] == found.by_window[1] and found.by_window[0] is not found.by_window[1]


def _plain(path: Path, windows: list[tuple[float, float, frozenset[str] | None]]) -> list[list[str]]:
    """What each window should hold: a plain look at every window for every line, in file order."""
    out: list[list[str]] = [[] for _ in windows]
    for log in sorted((path / store.LOGS).glob("*.log")):
        kept = [0] * len(windows)
        for text in log.read_text().splitlines():
            t = line_time(text, T0)
            for i, (a, b, nodes) in enumerate(windows):
                if t is not None and (nodes is None or log.stem in nodes) and a <= t <= b:
                    if kept[i] < PER_WINDOW:
                        out[i].append(text)
                        kept[i] += 1
    return [sorted(w) for w in out]


def test_the_scan_keeps_what_a_look_at_every_window_keeps(tmp_path: Path) -> None:
    rng = random.Random(27)
    for node in ("agent-1", "agent-2", "nats"):
        # Out of order on purpose, with bursts of one instant and lines without a time.
        lines: list[dict | str] = [
            {"t": T0 + round(rng.uniform(-5, 60), rng.choice((0, 1, 3))), "n": i} for i in range(800)
        ]
        lines += ["no time here"] * 20
        rng.shuffle(lines)
        _log(tmp_path, node, lines)
    windows: list[tuple[float, float, frozenset[str] | None]] = []
    for _ in range(300):
        a = round(rng.uniform(-10, 65), rng.choice((0, 1, 2)))
        width = rng.choice((0.0, 0.5, 3.0, 3.0, 3.0, 40.0))
        nodes = rng.choice((None, frozenset({"agent-1"}), frozenset({"nats", "agent-2"})))
        windows.append((a, a + width, nodes))
    windows += windows[:30]  # equal windows, each its own
    found = scan(tmp_path, [], windows, T0)
    assert [sorted(ln.text for ln in w) for w in found.by_window] == _plain(tmp_path, windows)


def test_a_fifo_in_logs_is_named_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / store.LOGS).mkdir()
    os.mkfifo(tmp_path / store.LOGS / "agent-1.log")
    _log(tmp_path, "nats", [{"t": T0 + 1.0, "msg": "still read"}])
    done: list = []
    worker = threading.Thread(target=lambda: done.append(scan(tmp_path, [], [(0, 5, None)], T0)))
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the reader so the test run can end, then fail
        os.close(os.open(tmp_path / store.LOGS / "agent-1.log", os.O_WRONLY | os.O_NONBLOCK))
        raise AssertionError("the scan waited on a FIFO")
    (found,) = done
    assert [ln.text for ln in found.by_window[0]] == [json.dumps({"t": T0 + 1.0, "msg": "still read"})]
    assert any("agent-1.log" in u and "FIFO" in u for u in found.unread)


def test_links_in_logs_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(json.dumps({"t": T0 + 1.0, "msg": "private key"}) + "\n")
    run = tmp_path / "run"
    (run / store.LOGS).mkdir(parents=True)
    (run / store.LOGS / "agent-1.log").symlink_to(secret)
    (run / store.LOGS / "agent-2.log").symlink_to("/dev/zero")
    found = scan(run, [], [(0.0, 5.0, None)], T0)
    assert found.by_window == [[]]
    assert sorted(u.split(":")[0] for u in found.unread) == [
        str(run / store.LOGS / "agent-1.log"),
        str(run / store.LOGS / "agent-2.log"),
    ]


def test_a_line_longer_than_the_cap_is_cut_and_the_next_lines_are_read(tmp_path: Path) -> None:
    long = json.dumps({"t": T0 + 1.0, "cid": "c-long", "msg": "x" * (3 * store.MAX_LINE_BYTES)})
    _log(tmp_path, "agent-1", [long, {"t": T0 + 2.0, "cid": "c-after", "msg": "after"}])
    found = scan(tmp_path, ["c-long", "c-after"], [(0.0, 5.0, None)], T0)
    assert [ln.text[:40] for ln in found.by_cid["c-long"]] == [long[:40]]
    assert [ln.t for ln in found.by_cid["c-after"]] == [2.0]
    assert [ln.t for ln in found.by_window[0]] == [1.0, 2.0]


def test_a_time_that_does_not_exist_is_no_time() -> None:
    assert line_time("[1] 2027/13/45 08:00:02.600000 [INF] ready", T0) is None
    assert line_time('{"time": "2027-02-30T08:00:02Z"}', T0) is None
    assert line_time('{"t": ' + "9" * 400 + "}", T0) is None
    assert line_time('{"t": 1800000001.5}', T0) == 1.5
