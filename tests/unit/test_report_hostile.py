"""`report` on run directories made by an attacker or broken on the way: outputs never written
through a link, hostile text escaped wherever the page shows it, index links that stay relative
paths, and broken directories that still get the page a person needs while the others are reported."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from harness import store
from harness.cli import main
from harness.report import INDEX, report, write_index, write_report
from harness.report.index import href
from tests.unit.rundirs import RunDir

T0 = 1_800_000_000.0
HOSTILE = (
    "\"'><script>alert(1)</script><img src=x onerror=alert(2)>"
    "</title></style></svg><svg onload=alert(3)><a href='javascript:alert(4)'>x</a><!-- $\\foo$ &amp;"
)


class _Tags(HTMLParser):
    """Every element and attribute of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    handle_startendtag = handle_starttag


def _parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    tags.close()
    return tags


def _assert_inert(html: str, benign: str) -> None:
    """No element or attribute in `html` that the template (the benign page) does not have, no
    script, no handler, no link that is not a relative path."""
    got, template = _parse(html), _parse(benign)
    assert "script" not in got.tags and "iframe" not in got.tags and "img" not in got.tags
    assert got.tags <= template.tags, got.tags - template.tags
    names = {(t, k) for t, k, _ in got.attrs}
    assert names <= {(t, k) for t, k, _ in template.attrs}, names - {(t, k) for t, k, _ in template.attrs}
    assert not [a for a in got.attrs if a[1].startswith("on")]
    for tag, name, value in got.attrs:
        if name in ("href", "src", "xlink:href", "action", "formaction"):
            assert value.startswith(("./", "#")), (tag, name, value)


def _run(name: str, text: str) -> RunDir:
    """A run with `text` in every field the report shows: scenario, cids, anomalies (lost, no-effect),
    fault ids, kinds, targets and evidence, sources, stream and store values, log lines."""
    run = RunDir(
        name=text,
        description=text,
        seed=text,
        rerun=text,
        sut={"image": text, "buggify": [text, 5]},
    )
    cid = "c-" + text
    run.intent("fine", 0.5)
    run.invoke(cid, 1.0, key=text, value=text).ok(cid, 1.1, outcome="pending-commit")
    run.start(text, 2.0, text, target={"links": [text + ">nats"]}, evidence={text: text}).stop(text, 3.0)
    run.start("f2", 2.0, "partition", target={"groups": [[text], ["nats"]]})
    run.sample(1.0, "agent-" + text, buffer_depth=1, peers_reachable=1, rss_bytes=2**20, open_fds=9)
    run.sample(1.0, text, rss_bytes=2**20, open_fds=9)
    run.sample(1.0, "jetstream", stream_msgs=1, stream_bytes=1, consumer_num_pending=0)
    return run


def _write(run: RunDir, parent: Path, name: str, log_text: str) -> Path:
    path = run.write(parent, name)
    store.write_json(path / store.TIMINGS, {"t0_unix": T0, "drive_s": 3.0})
    (path / store.LOGS).mkdir()
    line = {"t": T0 + 2.5, "cid": "c-x", "msg": log_text}
    (path / store.LOGS / "nats.log").write_text(json.dumps(line) + "\n" + log_text + "\n")
    return path


def test_hostile_text_in_every_field_injects_nothing(tmp_path: Path) -> None:
    hostile = _write(_run("h", HOSTILE), tmp_path / "a", "h", HOSTILE)
    benign = _write(_run("b", "plain"), tmp_path / "b", "b", "plain")
    page = write_report(hostile).read_text()
    verdict = json.loads((hostile / store.VERDICT).read_text())
    assert verdict["anomalies"] and any(HOSTILE in a["detail"] for a in verdict["anomalies"])
    assert "not drawn" not in page and "Incomplete" not in page
    _assert_inert(page, write_report(benign).read_text())
    assert page.count("&lt;script&gt;alert(1)") >= 8  # shown, as text
    # The hostile text also as the checks' own words (a check's name, figures, error), in both.
    for path, text in ((hostile, HOSTILE), (benign, "plain")):
        verdict = json.loads((path / store.VERDICT).read_text())
        verdict["checks"][text] = {"valid": "unknown", text: text, "error": text}
        verdict["anomalies"].append({"kind": text, "cid": text, "detail": text})
        store.write_json(path / store.VERDICT, verdict)
    _assert_inert(write_report(hostile).read_text(), write_report(benign).read_text())


NAMES = [
    "javascript:alert(1)",
    "a'b\"c",
    "<i>x&amp;<\\b>",
    "x#y?z=1",
    "with spaces",
    "naïve-ünïcode-名前",
    "%2e%2e",
    "..%2f..",
]


def test_index_links_are_relative_paths_to_each_folder_whatever_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    names = NAMES + [os.fsdecode(b"not-utf8-\xff")]
    for name in names:
        _write(_run(name, "plain"), folder, name, "plain")
    assert main(["report", str(folder)]) == 0
    html = (folder / INDEX).read_text(errors="backslashreplace")
    write_report(_write(_run("plain", "plain"), tmp_path / "benign", "plain", "plain"))
    _assert_inert(html, write_index(tmp_path / "benign").read_text())
    links = [v for t, k, v in _parse(html).attrs if k == "href"]
    assert sorted(links) == sorted(href(n) for n in names)
    for name in names:
        link = href(name)
        assert link.startswith("./") and ":" not in link and "#" not in link and "?" not in link
        target = folder / os.fsdecode(unquote_to_bytes(link))
        assert target.resolve() == (folder / name / store.REPORT).resolve() and target.is_file()


@pytest.mark.parametrize("output", [store.REPORT, store.VERDICT])
def test_a_link_at_an_output_is_refused_and_its_target_untouched(tmp_path: Path, capsys, output: str) -> None:
    folder = tmp_path / "run"
    bad = _write(_run("x", "plain"), folder, "bad", "plain")
    good = _write(_run("y", "plain"), folder, "good", "plain")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (bad / output).symlink_to(outside)
    assert main(["report", str(folder)]) == 2
    assert outside.read_text() == "keep me"
    assert (bad / output).is_symlink()
    if output == store.VERDICT:
        assert not (bad / store.REPORT).exists()
    assert (good / store.REPORT).is_file() and (folder / INDEX).is_file()
    err = capsys.readouterr().err
    assert f"{bad / output}: is a symbolic link" in err
    index = (folder / INDEX).read_text()
    assert "report not written" in index and 'href="./good/report.html"' in index
    assert 'href="./bad/report.html"' not in index


def test_a_link_at_index_html_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "run"
    _write(_run("x", "plain"), folder, "one", "plain")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (folder / INDEX).symlink_to(outside)
    assert main(["report", str(folder)]) == 2
    assert outside.read_text() == "keep me" and (folder / INDEX).is_symlink()
    assert f"{folder / INDEX}: is a symbolic link" in capsys.readouterr().err
    with pytest.raises(store.OutputError):
        write_index(folder)


def test_a_linked_scenario_folder_is_not_reported_through(tmp_path: Path, capsys) -> None:
    elsewhere = _write(_run("x", "plain"), tmp_path / "elsewhere", "victim", "plain")
    folder = tmp_path / "run"
    _write(_run("y", "plain"), folder, "one", "plain")
    (folder / "linked").symlink_to(elsewhere)
    assert main(["report", str(folder)]) == 2
    assert not (elsewhere / store.REPORT).exists() and not (elsewhere / store.VERDICT).exists()
    assert "linked: a symbolic link, not followed" in capsys.readouterr().err


def _broken_history(path: Path) -> None:
    with open(path / store.HISTORY, "a") as f:
        f.write('{"t": 9.0, "process": "c1", "type": "inv')  # the last line cut


def test_a_run_folder_with_one_broken_scenario_reports_the_others(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "run"
    good = _write(_run("good", "plain"), folder, "good", "plain")
    torn = _write(_run("torn", "plain"), folder, "torn", "plain")
    _broken_history(torn)
    assert main(["report", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert out.split() == [str(good / store.REPORT), str(torn / store.REPORT), str(folder / INDEX)]
    assert f"incomplete: {torn}: {torn / store.HISTORY}:" in err and "good" not in err
    index = (folder / INDEX).read_text()
    row = index[index.index('href="./torn/report.html"') :]
    assert f"{torn / store.HISTORY}:" in row[: row.index("</tr>")]


def _lost_run(tmp_path: Path, name: str = "lost") -> Path:
    run = RunDir(name=name)
    run.intent("fine", 0.5)
    run.invoke("lost-cid", 1.0).ok("lost-cid", 1.1, outcome="pending-commit")
    run.start("f1", 2.0, "crash", target={"node": "agent-1"}).stop("f1", 3.0, "crash")
    run.sample(1.0, "agent-1", buffer_depth=0, buffer_cap=256)
    return run.write(tmp_path, name)


def test_a_torn_history_still_shows_the_verdict_and_what_can_be_drawn(tmp_path: Path) -> None:
    path = _lost_run(tmp_path)
    _broken_history(path)
    out, problems = report(path)
    html = out.read_text()
    assert problems and all(str(path / store.HISTORY) in p for p in problems)
    assert "id=verdict>UNKNOWN: could not check" in html
    assert "Incomplete: " + str(path / store.HISTORY) in html
    assert "Not drawn: history.jsonl could not be read" in html
    assert html.count("<svg") == 1  # the one samples' plot that has data: buffers
    assert "Peers and stream lag: not drawn: no agent peers_reachable" in html


def test_no_samples_still_draws_the_history(tmp_path: Path) -> None:
    path = _lost_run(tmp_path)
    (path / store.SAMPLES).write_text("")
    out, problems = report(path)
    html = out.read_text()
    assert problems == []
    assert "id=verdict>INVALID" in html and "lost 1" in html and "lost-cid" in html
    assert "no agent sample with a buffer_depth in samples.jsonl" in html
    assert html.count("<svg") == 3  # the timeline, intents per second, latency


@pytest.mark.parametrize(
    "verdict",
    [
        None,
        "{not json",
        "[]",
        '{"valid": true}',
        '{"valid": "yes", "checks": {}, "anomalies": []}',
        '{"valid": false, "checks": [], "anomalies": []}',
        '{"valid": false, "checks": {}, "anomalies": [{"kind": ["x"]}]}',
        '{"valid": false, "checks": {}, "anomalies": [{"kind": "lost", "cid": 5, "detail": ""}]}',
        '{"valid": false, "checks": {"x": 1}, "anomalies": []}',
        '{"valid": NaN, "checks": {}, "anomalies": []}',
    ],
)
def test_a_missing_or_malformed_verdict_is_judged_again(tmp_path: Path, verdict: str | None) -> None:
    path = _lost_run(tmp_path)
    if verdict is not None:
        (path / store.VERDICT).write_text(verdict)
    out, problems = report(path)
    html = out.read_text()
    assert problems == []
    assert "id=verdict>INVALID: 3 anomalies (lost 1," in html and "lost-cid" in html
    assert json.loads((path / store.VERDICT).read_text())["valid"] is False
    assert (verdict is None) == ("judged again and written afresh" not in html)


def test_a_malformed_scenario_and_timings_still_give_a_page(tmp_path: Path) -> None:
    path = _lost_run(tmp_path)
    (path / store.SCENARIO).write_text('{"name": 5, "budgets": [1], "topology": "x", "load": 7, "sut": 3}')
    (path / store.TIMINGS).write_text('{"t0_unix": "soon", "drive_s": [], "reset_s": true}')
    out, problems = report(path)
    html = out.read_text()
    assert [p.split(":")[0] for p in problems] == [str(path / store.SCENARIO)]
    assert "<h1>5</h1>" in html and "id=verdict>UNKNOWN: could not check reconciliation" in html
    assert "Incomplete: " + str(path / store.SCENARIO) + ": load: got int" in html
    assert html.count("<svg") == 4  # the timeline, intents, latency (default budgets), buffers
    (path / store.SCENARIO).write_text("{")
    (path / store.TIMINGS).write_text('{"drive_s": 1e999}')
    out, problems = report(path)
    assert sorted(p.split(":")[0] for p in problems) == [
        str(path / store.SCENARIO),
        str(path / store.TIMINGS),
    ]
    assert "Incomplete: " + str(path / store.SCENARIO) in out.read_text()


def test_a_fifo_in_logs_is_named_and_the_page_written(tmp_path: Path, capsys) -> None:
    path = _lost_run(tmp_path)
    (path / store.LOGS).mkdir()
    os.mkfifo(path / store.LOGS / "agent-1.log")
    (path / store.LOGS / "nats.log").symlink_to("/dev/zero")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "agent-1.log: not a regular file (a FIFO)" in err and "nats.log: a symbolic link" in err
    html = (path / store.REPORT).read_text()
    assert "id=verdict>UNKNOWN: could not check the run directory" in html
    assert "Incomplete: " + str(path / store.LOGS / "agent-1.log") in html
    assert html.count("<svg") == 4  # what does not need the verdict is drawn all the same


def test_a_failure_no_guard_foresaw_costs_one_section_or_one_directory(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from harness.report import page

    folder = tmp_path / "run"
    first, second = _lost_run(folder, "first"), _lost_run(folder, "second")

    def broken(*args: object) -> str:
        raise TypeError("a value no one expected")

    monkeypatch.setattr(page, "_faults_html", broken)
    out, problems = report(first)
    assert "the faults: not shown: TypeError: a value no one expected" in out.read_text()
    assert problems == [f"{first}: the faults: TypeError: a value no one expected"]
    real = page.render
    monkeypatch.setattr(page, "render", lambda d, *a: broken() if d == first else real(d, *a))
    assert main(["report", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert out.split() == [str(second / store.REPORT), str(folder / INDEX)]
    assert f"not reported: {first}: TypeError: a value no one expected" in err
