"""pytest --shrink (harness/plugin.py): one budget for the session, started by its first failing item and
shared by the ones after, so a nightly job's timeout holds however many fail; a soak is never shrunk.
The shrink itself (harness.shrink.cli.shrink_failed) is replaced by a recorder of the budget it is given:
what is checked here is only how the plugin spends the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import plugin
from harness.paths import ROOT
from harness.scenario import load_scenarios
from harness.shrink import cli


class _Config:
    def __init__(self, budget: str) -> None:
        self.stash = pytest.Stash()
        self.budget = budget

    def getoption(self, name: str):
        assert name == "--shrink"
        return self.budget


def _scenario(path: str):
    ((_, scenario),) = load_scenarios(ROOT / path)
    return scenario


def test_failing_items_share_one_budget_started_by_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    given: list[float] = []
    monkeypatch.setattr(plugin.time, "monotonic", lambda: now[0])

    def shrink_failed(run_dir: Path, budget_s: float, lock: Path | None = None) -> str:
        given.append(budget_s)
        now[0] += 600  # this shrink took 10 minutes
        return "shrunk"

    monkeypatch.setattr(cli, "shrink_failed", shrink_failed)
    config = _Config("20m")
    many = _scenario("tests/shrink/random-many.yaml")
    assert plugin.shrink_item(config, many, Path("/r/1")) == "shrunk"
    assert plugin.shrink_item(config, many, Path("/r/2")) == "shrunk"
    third = plugin.shrink_item(config, many, Path("/r/3"))
    assert given == [1200.0, 600.0]
    assert third == "not shrunk: --shrink 20m was spent on earlier failing items"


def test_a_soak_is_not_shrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "shrink_failed", lambda *a, **k: pytest.fail("a soak was shrunk"))
    said = plugin.shrink_item(_Config("20m"), _scenario("scenarios/soak.yaml"), Path("/r/soak"))
    assert said.startswith("not shrunk: a soak's candidates each run its whole load")
