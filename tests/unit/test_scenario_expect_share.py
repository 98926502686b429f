"""`expect.min_committed` as a share of the load (`50%`): resolved against the intents the load sends, so a
soak's floor follows --soak-duration; scenario.json (the public run format) holds the count."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.loader import load_scenarios
from harness.scenario.types import ScenarioError


def _file(tmp_path: Path, floor: str, markers: str = "[soak]") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\nmarkers: {markers}\nload: {{rate: 100, duration: 5m}}\nexpect:\n  min_committed: {floor}\n"
    )
    return path


@pytest.mark.parametrize(("duration", "floor"), [(None, 15000), ("3m", 9000), ("2h", 360000), ("1s", 50)])
def test_a_share_scales_with_the_soak_duration(tmp_path: Path, duration: str | None, floor: int) -> None:
    ((_, scenario),) = load_scenarios(_file(tmp_path, "50%"), soak_duration=duration)
    assert scenario.resolved()["expect"]["min_committed"] == floor


def test_a_count_stays_as_written(tmp_path: Path) -> None:
    ((_, scenario),) = load_scenarios(_file(tmp_path, "15000"), soak_duration="3m")
    assert scenario.resolved()["expect"]["min_committed"] == 15000


def test_a_share_rounds_up(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nload: {rate: 1, duration: 3s}\nexpect: {min_committed: 50%}\n")
    ((_, scenario),) = load_scenarios(path)
    assert scenario.resolved()["expect"]["min_committed"] == 2


@pytest.mark.parametrize("bad", ["101%", "-5%", "half", "50 percent", "true", "1.5"])
def test_a_bad_floor_names_its_line_and_what_is_allowed(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenarios(_file(tmp_path, bad, markers="[]"))
    text = str(e.value)
    assert "s.yaml:5" in text and "min_committed" in text
    assert "a share of those the load sends: 50%" in text
