"""The offline reaper's parsing of Ryuk's protocol (pure logic; the real reaping is
proven in tests/integration/test_cleanup.py)."""

import importlib.util

import pytest

from harness.paths import ROOT


@pytest.fixture(scope="module")
def reaper():
    spec = importlib.util.spec_from_file_location("reaper", ROOT / "docker/offline/reaper/reaper.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_testcontainers_label_line_becomes_a_docker_filter(reaper) -> None:
    line = "label=org.testcontainers.session-id=5f0c\r\n"
    assert reaper.parse_filter_line(line) == {"label": ["org.testcontainers.session-id=5f0c"]}


def test_several_filters_on_one_line_are_all_kept(reaper) -> None:
    line = "label=solar-chaos.run%3Dr1&label=role%3Dnats"
    assert reaper.parse_filter_line(line) == {"label": ["solar-chaos.run=r1", "role=nats"]}


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("2m", 120), ("7", 7), ("", 3), ("soon", 3)]
)
def test_durations_follow_ryuk_settings(reaper, text, seconds) -> None:
    assert reaper.parse_duration(text, 3) == seconds


def test_the_reaper_waits_for_the_grace_period_after_the_last_client(reaper, monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(reaper.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(reaper.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10)
    r.connected(+1)
    r.connected(-1)
    assert r.wait_until_abandoned() is True
    assert 10 <= clock[0] <= 10.5


def test_a_reaper_nobody_connects_to_gives_up_without_reaping(reaper, monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(reaper.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(reaper.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10)
    assert r.wait_until_abandoned() is False
