"""What the runner asks of the system for a scenario (harness.runner.system_config): here, whether the
agents run under libfaketime (docs/clock.md), which only a scenario that can start a clock fault needs."""

from __future__ import annotations

from typing import Any

import pytest

from harness.runner import system_config
from harness.scenario import Scenario


def scenario(**fields: Any) -> Scenario:
    return Scenario.model_validate({"name": "s", "load": {"rate": 5, "duration": "60s"}, **fields})


@pytest.mark.parametrize(
    ("fields", "clock"),
    [
        ({}, False),
        ({"faults": [{"at": "1s", "for": "2s", "fault": "crash", "target": "agent-1"}]}, False),
        (
            {
                "faults": [
                    {"at": "1s", "for": "2s", "fault": "clock-skew", "targets": ["agent-1"], "offset": 30}
                ]
            },
            True,
        ),
        (
            {
                "random": {
                    "at": "1s",
                    "interval": "5s",
                    "duration": "2s",
                    "faults": ["partition", "clock-strobe"],
                }
            },
            True,
        ),
    ],
)
def test_the_agents_run_under_libfaketime_only_where_a_clock_fault_may_start(
    fields: dict[str, Any], clock: bool
) -> None:
    assert system_config(scenario(**fields)).clock is clock
