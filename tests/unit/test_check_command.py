"""`solar-chaos check` on hand-made run directories: one line per scenario, verdict.json beside
each, exit 0 valid / 1 anomalies / 2 cannot check, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import store
from harness.cli import main as cli
from tests.unit.rundirs import append_line, valid_run


def test_a_valid_directory_exits_0_and_writes_its_verdict(tmp_path: Path, capsys) -> None:
    path = valid_run().write(tmp_path, "nats-down")
    assert cli(["check", str(path)]) == 0
    assert capsys.readouterr().out.split() == ["valid", str(path)]
    assert json.loads((path / store.VERDICT).read_text())["valid"] is True


def test_a_run_folder_gives_one_line_per_scenario_and_the_worst_exit(tmp_path: Path, capsys) -> None:
    valid_run().write(tmp_path, "a-valid")
    broken = valid_run()
    broken.intent("lost-one", 2.5, land=False)
    broken.write(tmp_path, "b-broken")
    assert cli(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"valid      {tmp_path / 'a-valid'}"
    assert out[1] == f"INVALID: 1 anomaly (lost 1) {tmp_path / 'b-broken'}"
    assert out[2].startswith("  lost lost-one: accepted committed by agent-1 at t=2.51")


def test_json_prints_the_verdict_it_writes(tmp_path: Path, capsys) -> None:
    path = valid_run().write(tmp_path)
    assert cli(["check", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((path / store.VERDICT).read_text())


def test_a_malformed_line_exits_2_naming_file_and_line(tmp_path: Path, capsys) -> None:
    path = valid_run().write(tmp_path)
    line = append_line(path, store.STREAM, '{"seq": "nine", "cid": "x"}')
    assert cli(["check", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"{path / store.STREAM}:{line}: seq: got str, not int" in out
    assert json.loads((path / store.VERDICT).read_text())["valid"] == "unknown"


@pytest.mark.parametrize("make", ["missing", "empty folder"])
def test_a_path_that_is_no_run_directory_exits_2(tmp_path: Path, capsys, make: str) -> None:
    path = tmp_path / "nothing"
    if make == "empty folder":
        path.mkdir()
    assert cli(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "expected a scenario's run directory (with scenario.json)" in err
