"""Judging hand-made run directories (tests/unit/rundirs.py) in the checkers' unit tests: a healthy run
to start from, the verdict, and the assertion that exactly the expected anomalies were found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.checkers import judge
from tests.unit.rundirs import RunDir

AGENTS = ("agent-1", "agent-2")


def healthy(n: int = 5, start: float = 1.0, every: float = 1.0) -> RunDir:
    """n committed intents, one every `every` seconds from `start`, and drained agents at the end."""
    run = RunDir()
    for i in range(n):
        run.intent(f"ok-{i}", start + i * every)
    run.agents_drained(start + n * every, AGENTS)
    return run


def check(run: RunDir, tmp_path: Path) -> dict[str, Any]:
    return judge(run.write(tmp_path))


def found(verdict: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((a["kind"], a.get("cid")) for a in verdict["anomalies"])


def assert_only(verdict: dict[str, Any], *expected: tuple[str, str | None]) -> None:
    """Exactly these anomalies, nothing else; and every check could judge."""
    assert found(verdict) == sorted(expected), verdict["anomalies"]
    assert [name for name, c in verdict["checks"].items() if c["valid"] == "unknown"] == []
    assert verdict["valid"] is (not expected)


def details(verdict: dict[str, Any], kind: str) -> list[str]:
    return [a["detail"] for a in verdict["anomalies"] if a["kind"] == kind]
