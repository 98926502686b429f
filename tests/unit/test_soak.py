"""Soak mode: --soak-duration sets the load's duration of a scenario marked soak and of no other, the
re-run command carries it, and a soak run samples less often so a long run keeps flat files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.observe import MAX_SAMPLES, interval_for
from harness.observe.processes import harness_sample, proc_sample
from harness.paths import ROOT
from harness.runner import rerun_command
from harness.scenario import ScenarioError, load_scenarios

SOAK = """\
name: steady
markers: [soak]
load: {rate: 10, duration: 2m}
random: {interval: 60s, duration: 5s, faults: [partition]}
"""
PLAIN = "name: plain\nload: {rate: 10, duration: 20s}\n"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_soak_duration_replaces_the_load_duration_of_a_soak_scenario_only(tmp_path: Path) -> None:
    soak, plain = _write(tmp_path, "steady", SOAK), _write(tmp_path, "plain", PLAIN)
    ((_, as_written),) = load_scenarios(soak)
    assert as_written.load.duration == 120
    ((_, long),) = load_scenarios(soak, soak_duration="8h")
    assert long.load.duration == 8 * 3600
    assert long.random is not None and long.random.for_ is None  # its faults run to the new end
    ((_, untouched),) = load_scenarios(plain, soak_duration="8h")
    assert untouched.load.duration == 20


def test_a_bad_soak_duration_names_the_field_and_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenarios(_write(tmp_path, "steady", SOAK), soak_duration="forever")
    message = str(e.value)
    assert "steady.yaml (overridden): load.duration" in message and "allowed" in message, message


def test_the_rerun_command_carries_the_soak_duration() -> None:
    cmd = rerun_command("scenarios/soak.yaml", 7, soak_duration="30m")
    assert cmd == "solar-chaos run scenarios/soak.yaml --seed 7 --soak-duration 30m"


def test_pytest_deselects_soak_scenarios_unless_asked_for(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    _write(folder, "steady", SOAK)
    _write(folder, "plain", PLAIN)
    # A plain test marked soak (as an efficacy row whose scenario is a soak) is deselected the same way.
    (folder / "test_rows.py").write_text(
        "import pytest\n\n@pytest.mark.soak\ndef test_long_row():\n    pass\n\n"
        "def test_short_row():\n    pass\n"
    )

    def collected(*args: str) -> str:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "harness.plugin",
                *args,
                str(folder),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        return done.stdout

    by_default = collected()
    assert "plain.yaml::plain" in by_default and "steady" not in by_default.split("deselected")[0]
    assert "test_short_row" in by_default and "test_long_row" not in by_default
    assert "2 deselected" in by_default, by_default
    asked = collected("--soak-duration", "10m")
    assert "steady.yaml::steady" in asked and "test_long_row" in asked
    selected = collected("-m", "soak")
    assert "steady.yaml::steady" in selected and "test_long_row" in selected
    assert "plain.yaml::plain" not in selected and "test_short_row" not in selected


def test_long_runs_sample_less_often() -> None:
    assert interval_for(30) == 1.0
    assert interval_for(1800) == 1.0
    eight_hours = 8 * 3600
    assert eight_hours / interval_for(eight_hours) == pytest.approx(MAX_SAMPLES)


def test_a_process_is_read_from_proc_and_a_gone_one_is_none() -> None:
    me = harness_sample()
    assert me is not None and me["rss_bytes"] > 10 * 2**20 and me["open_fds"] >= 3
    assert proc_sample(2**22 + 12345) is None  # above pid_max's default: no such process
