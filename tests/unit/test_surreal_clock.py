"""SurrealDB's clock faults (docs/clock.md, "SurrealDB"): a skew or a jump may target `surrealdb`, a strobe
may not; the system runs SurrealDB under libfaketime only when one does, so every other scenario's
SurrealDB keeps the host's clock untouched."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from harness.runner import system_config
from harness.scenario import Scenario


def scenario(*faults: dict[str, Any]) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "s",
            "topology": {"analytics": True},
            "load": {"rate": 5, "duration": "60s"},
            "faults": list(faults),
        }
    )


SKEW = {"at": "9s", "for": "10s", "fault": "clock-skew", "targets": ["surrealdb"], "offset": -60}
JUMP = {"at": "9s", "fault": "clock-jump", "targets": "surrealdb", "offset": -60}
AGENT_SKEW = {"at": "9s", "for": "10s", "fault": "clock-skew", "targets": ["agent-1"], "offset": 30}


@pytest.mark.parametrize("fault", [SKEW, JUMP], ids=["skew", "jump"])
def test_a_skew_or_a_jump_of_surrealdb_runs_it_under_libfaketime(fault: dict[str, Any]) -> None:
    cfg = system_config(scenario(fault))
    assert cfg.surreal_clock and cfg.clock


def test_only_a_fault_on_surrealdb_preloads_it() -> None:
    assert not system_config(scenario(AGENT_SKEW)).surreal_clock
    assert not system_config(scenario()).surreal_clock


def test_a_strobe_of_surrealdb_is_refused() -> None:
    strobe = {**SKEW, "fault": "clock-strobe", "period": "2s"}
    with pytest.raises(ValidationError, match="clock-strobe cannot move surrealdb's clock"):
        scenario(strobe)
