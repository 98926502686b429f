"""The report builder on hand-made run directories: one self-contained page that shows the verdict,
the re-run command, the plots, and for an anomaly its cid's trace across history, stream, store and
the containers' logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness import store
from harness.cli import main
from harness.report import INDEX, write_index, write_report
from tests.unit.rundirs import RunDir

T0 = 1_800_000_000.0  # the containers' clock at t = 0


def _lost_run(tmp_path: Path) -> Path:
    run = RunDir(name="lost-one", seed=7, rerun="solar-chaos run scenarios/lost-one.yaml --seed 7")
    for i in range(20):
        run.intent(f"fine-{i}", 0.5 + i * 0.1)
    run.invoke("lost-cid", 3.0, agent="agent-2").ok(
        "lost-cid", 3.2, outcome="pending-commit", agent="agent-2"
    )
    run.start("f1", 2.5, "outage", target={"node": "nats"}, scheduled=2.4).stop("f1", 6.0, "outage")
    run.sample(1.0, "agent-2", buffer_depth=0, buffer_cap=256, peers_reachable=2)
    run.sample(4.0, "agent-2", buffer_depth=3, buffer_cap=256, peers_reachable=2)
    run.sample(4.0, "jetstream", stream_msgs=20, consumer_num_pending=0, consumer_num_ack_pending=0)
    run.sample(4.0, "surrealdb", rss_bytes=80 * 2**20, open_fds=40)
    run.agents_drained(9.0, ("agent-1", "agent-2"))
    path = run.write(tmp_path, "lost-one")
    store.write_json(path / store.TIMINGS, {"drive_s": 9.0, "t0_unix": T0})
    logs = path / store.LOGS
    logs.mkdir()
    lines = [
        {"t": T0 + 3.1, "level": "info", "node": "agent-2", "msg": "pending-commit", "cid": "lost-cid"},
        {"t": T0 + 3.15, "level": "info", "node": "agent-2", "msg": "<script>alert(1)</script>"},
        {"t": T0 + 50.0, "level": "info", "node": "agent-2", "msg": "late", "cid": "fine-3"},
    ]
    (logs / "agent-2.log").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (logs / "nats.log").write_text("[1] 2027/01/15 08:00:02.600000 [INF] Server is ready\n")
    return path


def test_a_lost_intent_shows_with_its_trace_and_the_page_needs_nothing_else(tmp_path: Path) -> None:
    path = _lost_run(tmp_path)
    out = write_report(path)  # no verdict.json yet: the checkers judge first
    assert out == path / store.REPORT and (path / store.VERDICT).is_file()
    html = out.read_text()
    verdict = json.loads((path / store.VERDICT).read_text())
    assert verdict["valid"] is False
    assert "INVALID: 1 anomaly (lost 1)" in html
    assert "solar-chaos run scenarios/lost-one.yaml --seed 7" in html
    # The anomaly, then its trace: the invoke and answer, the agent's log line, where it landed.
    assert html.count("lost-cid") >= 4
    trace = html[html.index("<details><summary><code>lost-cid") :]
    assert "pending-commit" in trace and "log agent-2" in trace and "3.100" in trace
    assert "neither in the stream nor in the store" in trace
    # Every plot is inline SVG; nothing is fetched, no script runs.
    assert html.count("<svg") >= 7
    # Each process's memory, by name, in the resources plot.
    resources = html[html.index("memory and open files") :]
    assert "surrealdb" in resources[: resources.index("</figure>")]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html.replace("&lt;script&gt;", "")
    # The fault's row: its lateness, and the log lines around its start.
    assert "late 0.100 s" in html
    # Around its start (t=2.4 to 2.5): the target's own log, its NATS-format line at t=2.6 included.
    around = html[html.index("logs around its start") :]
    assert "2.600" in around and "Server is ready" in around[: around.index("logs around its stop")]


def test_the_report_is_the_same_for_the_same_run(tmp_path: Path) -> None:
    path = _lost_run(tmp_path)
    first = write_report(path).read_text()
    assert write_report(path).read_text() == first


def test_an_index_lists_each_scenario_with_its_verdict_and_link(tmp_path: Path) -> None:
    folder = tmp_path / "20270115-080000-abcdef"
    lost = _lost_run(folder)
    fine_run = RunDir(name="fine")
    fine_run.intent("a", 1.0)
    fine = fine_run.agents_drained(2.0).write(folder, "fine")
    for d in (lost, fine):
        write_report(d)
    html = write_index(folder).read_text()
    assert 'href="./lost-one/report.html"' in html and 'href="./fine/report.html"' in html
    assert "INVALID" in html and "lost 1" in html and ">valid<" in html


def test_the_command_writes_reports_and_the_index(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "20270115-080000-abcdef"
    _lost_run(folder)
    assert main(["report", str(folder)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(folder / "lost-one" / store.REPORT), str(folder / INDEX)]
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no such directory" in capsys.readouterr().err
