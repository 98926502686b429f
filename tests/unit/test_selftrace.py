"""SOLAR_CHAOS_TRACEMALLOC=1: the harness says where its own memory grew during a run."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from harness.observe.selftrace import ENV, SelfTrace

KEPT: list[bytes] = []


def grow() -> None:
    KEPT.extend(bytes(1000) for _ in range(2000))  # about 2 MB that stays


def test_off_by_default_it_traces_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    trace = SelfTrace(tmp_path)
    trace.start()
    trace.mark()
    trace.finish()
    assert not tracemalloc.is_tracing() and not (tmp_path / "tracemalloc.txt").exists()


def test_the_site_that_grew_after_the_mark_comes_first(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ENV, "1")
    trace = SelfTrace(tmp_path)
    trace.start()
    try:
        trace.mark()
        grow()
        trace.finish()
    finally:
        KEPT.clear()
        tracemalloc.stop()
    text = (tmp_path / "tracemalloc.txt").read_text()
    first = text.split("\n\n")[1]
    assert "test_selftrace.py" in first and "grow" in first, text[:2000]
    growth = int(first.split(" bytes")[0].replace(",", ""))
    assert growth >= 2_000_000
