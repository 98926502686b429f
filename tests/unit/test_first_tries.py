"""A replay's age (netsync.buffer.FirstTries): measured on the monotonic clock for an intent this process
decided, so a wall-clock step between its first attempt and a replay cannot make it look younger than it is
(agent-clock-skew found a clock stepped back 30 s making a replay look new, published twice); by the
journal's wall-clock time for one an earlier process decided."""

from __future__ import annotations

import time

import pytest

from netsync.buffer import FirstTries


class Clocks:
    """The two clocks the ages read, moved by hand: the wall clock may step, the monotonic one only runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wall, self.mono = 1_800_000_000.0, 500.0
        monkeypatch.setattr(time, "time", lambda: self.wall)
        monkeypatch.setattr(time, "monotonic", lambda: self.mono)

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_a_step_of_the_wall_clock_back_does_not_make_a_replay_younger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clocks, tries = Clocks(monkeypatch), FirstTries()
    first_attempt_at = clocks.wall
    tries.note("c1")
    clocks.run(7.0)
    clocks.wall -= 30.0  # the clock fault ends: the agent's clock steps back to the host's
    assert tries.age("c1", first_attempt_at) == pytest.approx(7.0)


def test_an_intent_from_the_journal_is_aged_by_its_wall_clock_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clocks, tries = Clocks(monkeypatch), FirstTries()
    journaled_at = clocks.wall - 40.0  # decided by the process before a restart
    assert tries.age("c2", journaled_at) == pytest.approx(40.0)
    clocks.wall -= 60.0  # a step back past it: an age is never negative
    assert tries.age("c2", journaled_at) == 0.0


def test_a_committed_intent_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    clocks, tries = Clocks(monkeypatch), FirstTries()
    tries.note("c3")
    clocks.run(3.0)
    tries.done("c3")
    assert tries.age("c3", clocks.wall - 1.0) == pytest.approx(1.0)  # the wall clock's word again
