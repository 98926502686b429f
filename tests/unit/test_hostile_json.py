"""verdict.json and `check --json` are strict JSON whatever the system under test answered (issue 27):
no NaN, no Infinity, nothing a strict parser refuses, read here by one that refuses them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness import store
from harness.checkers import Checker, Result, write_verdict
from harness.cli import main as cli
from tests.unit.rundirs import RunDir, append_line, valid_run


def strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_quorum_past_what_the_column_holds_is_no_infinity_in_the_outputs(tmp_path: Path, capsys) -> None:
    """quorum_ms 1e300 is a finite JSON number; its float32 column makes it inf, and so the p99."""
    run = RunDir()
    for i in range(3):
        run.intent(f"ok-{i}", 1.0 + i, quorum_ms=1e300)
    run.agents_drained(5.0)
    path = run.write(tmp_path)
    code = cli(["check", str(path), "--json"])
    printed = strict(capsys.readouterr().out)
    written = strict((path / store.VERDICT).read_text())
    assert printed == written
    assert code == exit_of(written)
    assert written["checks"]["latency"]["intent_p99_ms"] is None


def exit_of(verdict: dict[str, Any]) -> int:
    return {True: 0, False: 1}.get(verdict["valid"], 2)


OK = '{"t": 3.6, "process": "c1", "type": "ok", "f": "intent", "cid": "n1", "outcome": "committed"'


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e308"])
@pytest.mark.parametrize(
    ("name", "line"),
    [
        (store.HISTORY, OK + ', "stream_seq": 4, "quorum_ms": @}'),
        (store.HISTORY, OK + ', "stream_seq": @}'),
        (store.HISTORY, '{"t": @, "process": "c1", "type": "invoke", "f": "intent", "cid": "n2"}'),
        (store.SAMPLES, '{"t": 6.0, "source": "agent-1", "buffer_depth": @, "buffer_cap": 256}'),
        (store.SAMPLES, '{"t": 6.0, "source": "agent-1", "rss_bytes": @}'),
        (store.SAMPLES, '{"t": 6.0, "source": "jetstream", "stream_msgs": @}'),
        (store.STREAM, '{"seq": @, "cid": "n1", "key": "k-n1", "value": 1}'),
        (store.STORE, '{"cid": "n1", "key": "k-n1", "value": @, "stream_seq": 4}'),
    ],
)
def test_what_the_sut_answered_never_makes_the_outputs_loose_json(
    tmp_path: Path, capsys, name: str, line: str, literal: str
) -> None:
    run = valid_run()
    run.invoke("n1", 3.5)
    path = run.write(tmp_path)
    if not (name == store.HISTORY and line.startswith(OK)):
        append_line(path, store.HISTORY, OK + ', "stream_seq": 4}')
    append_line(path, name, line.replace("@", literal))
    code = cli(["check", str(path), "--json"])
    printed = strict(capsys.readouterr().out)
    written = strict((path / store.VERDICT).read_text())
    assert printed == written
    assert code == exit_of(written)


def test_several_directories_print_one_strict_line_each(tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        run = RunDir()
        run.intent("ok-1", 1.0, quorum_ms=1e300)
        run.agents_drained(5.0)
        run.write(tmp_path, name)
    cli(["check", str(tmp_path), "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert [strict(line)["dir"] for line in lines] == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_figures_a_checker_computes_as_nan_or_infinity_are_written_as_null(tmp_path: Path) -> None:
    figures = {
        "p99": math.nan,
        "slope": math.inf,
        "floor": -math.inf,
        "series": [1.0, math.nan, {"x": math.inf}],
    }
    checker = Checker("odd", lambda run: Result(dict(figures)), ())

    import harness.checkers

    path = valid_run().write(tmp_path)
    verdict = harness.checkers.judge(path, (checker,))
    store.write_json(path / store.VERDICT, verdict)
    written = strict((path / store.VERDICT).read_text())
    assert written["checks"]["odd"] == {
        "valid": True,
        "p99": None,
        "slope": None,
        "floor": None,
        "series": [1.0, None, {"x": None}],
    }
    assert write_verdict(path)["valid"] is True  # the real checkers on the same directory
    strict((path / store.VERDICT).read_text())
