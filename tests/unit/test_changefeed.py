"""The pure side of the analytics role: pages of SHOW CHANGES as SurrealDB 3.3.5 answers them (the
shapes below were copied from its answers), the view they are applied to, and the volume (cursor
file and applied log) that survives a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netsync.changefeed import (
    SUMMARY_SUBJECT,
    Change,
    ConfigError,
    FeedError,
    State,
    StateError,
    View,
    parse_page,
    retention_from_env,
    stamp_at,
    stamp_ms,
    summary_agents,
    unread,
)

# 2026-12-07 07:05:04.496 UTC, as SurrealDB stamped it
STAMP = 117743753920249856


def update(stamp: int, cid: str, key: str = "k", value: int = 1, seq: int = 1) -> dict[str, Any]:
    row = {"cid": cid, "id": f"sentiment:{cid}", "key": key, "stream_seq": seq, "value": value}
    return {"changes": [{"update": row}], "versionstamp": stamp}


DEFINE = {"changes": [{"define_table": {"name": "sentiment", "changefeed": {"original": False}}}]}


def test_a_versionstamp_is_the_servers_clock_in_milliseconds() -> None:
    assert stamp_ms(STAMP) == 1796627104496
    assert stamp_at(stamp_ms(STAMP)) <= STAMP < stamp_at(stamp_ms(STAMP) + 1)


def test_a_page_gives_its_rows_in_order_and_the_next_cursor_past_its_last_entry() -> None:
    answer = [
        {**DEFINE, "versionstamp": STAMP},
        update(STAMP + 100, "a", seq=3),
        update(STAMP + 200, "b", seq=4),
    ]
    page = parse_page(answer, cursor=0, limit=3)
    assert [c.cid for c in page.changes] == ["a", "b"]
    assert page.changes[0] == Change(STAMP + 100, "a", "k", 1, 3)
    assert page.ignored == [f"{STAMP}:define_table"]
    assert page.full, "LIMIT counts every entry, the table's definition too"
    assert page.next_cursor == STAMP + 201, "SINCE is inclusive: the next read starts one past"
    assert page.backwards == []


def test_a_capped_page_keeps_its_cursor_at_the_cap() -> None:
    page = parse_page([update(STAMP, "a"), update(STAMP + 500, "b")], cursor=STAMP - 10, limit=10)
    assert page.capped_cursor == STAMP + 501
    page.cursor_cap = STAMP + 100  # the server's clock: b was stamped before a restart stepped it back
    assert page.capped_cursor == STAMP + 100 and page.next_cursor == STAMP + 501


def test_a_database_page_passes_over_other_tables_but_counts_them_for_its_end() -> None:
    other = {"changes": [{"update": {"id": "other:x", "cid": "o", "key": "k", "value": 1, "stream_seq": 1}}]}
    other_def = {"changes": [{"define_table": {"name": "other"}}]}
    answer = [
        {**DEFINE, "versionstamp": STAMP},
        {**other_def, "versionstamp": STAMP + 1},
        {**other, "versionstamp": STAMP + 2},
        update(STAMP + 3, "a"),
    ]
    page = parse_page(answer, cursor=0, limit=4, table="sentiment")
    assert [c.cid for c in page.changes] == ["a"] and page.others == 2
    assert page.ignored == [f"{STAMP}:define_table"]
    assert page.full and page.next_cursor == STAMP + 4


def test_an_empty_page_keeps_the_cursor_and_is_not_full() -> None:
    page = parse_page([], cursor=STAMP, limit=10)
    assert page.next_cursor == STAMP and not page.full and page.changes == []


def test_stamps_below_the_cursor_or_going_back_are_named() -> None:
    answer = [update(STAMP - 5, "a"), update(STAMP + 10, "b"), update(STAMP + 3, "c")]
    page = parse_page(answer, cursor=STAMP, limit=10)
    assert page.backwards == [(STAMP - 5, STAMP), (STAMP + 3, STAMP + 10)]
    assert [c.cid for c in page.changes] == ["a", "b", "c"], "still applied: by cid, at most once"
    assert page.next_cursor == STAMP + 11


def test_entries_that_are_no_row_of_ours_are_ignored_not_fatal() -> None:
    answer = [
        {"changes": [{"delete": {"id": "sentiment:x"}}], "versionstamp": STAMP},
        {
            "changes": [{"update": {"cid": "x", "key": "k", "value": "seven", "stream_seq": 1}}],
            "versionstamp": STAMP + 1,
        },
        {
            "changes": [{"update": {"cid": "y", "key": "k", "value": True, "stream_seq": 1}}],
            "versionstamp": STAMP + 2,
        },
        {"changes": ["odd"], "versionstamp": STAMP + 3},
    ]
    page = parse_page(answer, cursor=0, limit=10)
    assert page.changes == []
    assert page.ignored == [
        f"{STAMP}:delete",
        f"{STAMP + 1}:update",
        f"{STAMP + 2}:update",
        f"{STAMP + 3}:unreadable",
    ]


@pytest.mark.parametrize(
    "answer",
    [None, {"versionstamp": 1}, ["x"], [{"changes": []}], [{"versionstamp": True, "changes": []}]],
)
def test_an_answer_that_is_no_page_is_a_feed_error(answer: Any) -> None:
    with pytest.raises(FeedError):
        parse_page(answer, cursor=0, limit=10)


def test_the_view_applies_each_cid_once_and_keeps_the_highest_stream_seq() -> None:
    view = View()
    assert view.apply(Change(1, "a", "k", 10, 5)) == "applied"
    assert view.apply(Change(2, "a", "k", 10, 5)) == "duplicate"
    assert view.apply(Change(3, "b", "k", 20, 4)) == "stale", "a redelivered older message"
    assert view.rows["k"].line() == {"key": "k", "value": 10, "cid": "a", "stream_seq": 5}
    assert view.apply(Change(4, "c", "k", 30, 6)) == "applied"
    assert view.rows["k"].cid == "c"
    assert view.cids == {"a", "b", "c"}


def test_without_the_guard_the_last_applied_wins() -> None:
    view = View()
    view.apply(Change(1, "a", "k", 10, 5), guard=False)
    view.apply(Change(2, "b", "k", 20, 4), guard=False)
    assert view.rows["k"].cid == "b"


def test_a_summary_gives_per_agent_its_figures_and_window() -> None:
    figures = {"samples": 3, "peers_reachable_min": 1, "buffer_depth_max": 4, "nats_reachable_last": False}
    summary = {"window_start": 1.0, "window_end": 2, "messages": 3, "agents": {"agent-1": figures}}
    assert summary_agents(summary) == {
        "agent-1": {"agent": "agent-1", "window_start": 1.0, "window_end": 2, **figures}
    }


@pytest.mark.parametrize(
    ("summary", "names"),
    [
        ([], "agents"),
        ({"agents": []}, "agents"),
        ({"agents": {}, "window_start": "1", "window_end": 2}, "window_start"),
        ({"agents": {}, "window_start": 1, "window_end": True}, "window_end"),
        ({"agents": {"agent-1": 3}, "window_start": 1, "window_end": 2}, "agents.agent-1"),
    ],
)
def test_a_message_that_is_no_summary_names_what_is_wrong(summary: Any, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        summary_agents(summary)


def test_the_subject_is_the_scouts() -> None:
    from netsync.telemetry import SUMMARY_SUBJECT as SCOUTS

    assert SUMMARY_SUBJECT == SCOUTS


def test_unread_names_the_tables_cids_neither_applied_nor_reported() -> None:
    assert unread(["a", "b", "c", None, 3], {"a", "c"}) == ["b"]


@pytest.mark.parametrize("raw", ["30s", "1h", "1h30m", "500ms", "2d"])
def test_a_retention_is_a_surrealdb_duration(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("NETSYNC_CHANGEFEED_RETENTION", raw)
    assert retention_from_env() == raw


@pytest.mark.parametrize("raw", ["30", "1 h", "0s", "1h;REMOVE TABLE x", "-1s"])
def test_a_bad_retention_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("NETSYNC_CHANGEFEED_RETENTION", raw)
    with pytest.raises(ConfigError, match="NETSYNC_CHANGEFEED_RETENTION"):
        retention_from_env()


def test_the_retention_defaults_to_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETSYNC_CHANGEFEED_RETENTION", raising=False)
    assert retention_from_env() == "1h"


# -- the volume ------------------------------------------------------------------


def applied(stamp: int, cid: str, key: str, seq: int) -> dict[str, Any]:
    return {"t": 1.0, "type": "applied", **Change(stamp, cid, key, seq, seq).line()}


def test_the_volume_gives_back_the_cursor_view_and_reported_cids(tmp_path: Path) -> None:
    state = State(tmp_path)
    assert state.cursor == 0
    state.append([applied(10, "a", "k", 2), applied(11, "b", "k", 1)])
    state.view.apply(Change(10, "a", "k", 2, 2))
    state.append([{"t": 2.0, "type": "gap", "kind": "unread", "detail": "swept", "cid": "z"}])
    state.save_cursor(12)
    state.close()
    again = State(tmp_path)
    assert again.cursor == 12
    assert again.view.rows["k"].cid == "a", "the older b applied later does not win"
    assert again.view.cids == {"a", "b"} and again.gapped == {"z"}
    assert (again.applied, again.gaps, again.known) == (2, 1, 3)
    assert not (tmp_path / "cursor.tmp").exists()


def test_a_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    log = tmp_path / "applied.jsonl"
    log.write_text(json.dumps(applied(10, "a", "k", 1)) + "\n" + '{"t": 1.0, "type": "appl')
    state = State(tmp_path)
    assert state.view.cids == {"a"}
    assert log.read_text().endswith("}\n")
    state.append([applied(11, "b", "k", 2)])
    state.close()
    assert State(tmp_path).view.cids == {"a", "b"}


def test_a_bad_earlier_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "applied.jsonl").write_text(
        '{"type": "applied"}\n' + json.dumps(applied(1, "a", "k", 1)) + "\n"
    )
    with pytest.raises(StateError, match=r"applied\.jsonl:1: "):
        State(tmp_path)


@pytest.mark.parametrize("raw", ["", "{}", '{"cursor": -1}', '{"cursor": "7"}', "[1]"])
def test_a_cursor_file_not_ours_is_refused(tmp_path: Path, raw: str) -> None:
    (tmp_path / "cursor.json").write_text(raw)
    with pytest.raises(StateError, match=r"cursor\.json"):
        State(tmp_path)


def test_lazy_appends_reach_the_file_only_when_flushed(tmp_path: Path) -> None:
    state = State(tmp_path, lazy=True)  # opened just now: no flush is due for a second
    state.append([applied(10, "a", "k", 1)])
    assert (tmp_path / "applied.jsonl").read_text() == "", "buggify cursor-before-apply: still in the buffer"
    state.flush()
    assert "a" in (tmp_path / "applied.jsonl").read_text()
    state.close()


# -- the role's settings ---------------------------------------------------------------


def test_the_analytics_settings_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from netsync.settings import AnalyticsSettings

    for var in (
        "NETSYNC_NATS_URL",
        "NETSYNC_ANALYTICS_PAGE",
        "NETSYNC_ANALYTICS_POLL_MS",
        "NETSYNC_ANALYTICS_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETSYNC_SURREAL_URL", "ws://toxiproxy:24001/rpc")
    s = AnalyticsSettings.from_env()
    assert (s.name, s.page_limit, s.poll_interval, s.nats_servers) == ("analytics", 1000, 0.2, ())
    assert s.state_dir == "/var/lib/netsync-analytics" and s.table == "sentiment"
    monkeypatch.setenv("NETSYNC_NATS_URL", "nats://a:1,nats://b:2")
    assert AnalyticsSettings.from_env().nats_servers == ("nats://a:1", "nats://b:2")


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("NETSYNC_ANALYTICS_PAGE", "0"),
        ("NETSYNC_ANALYTICS_PAGE", "1001"),
        ("NETSYNC_ANALYTICS_POLL_MS", "0"),
        ("NETSYNC_ANALYTICS_POLL_MS", "fast"),
        ("NETSYNC_SURREAL_DB", "a`b"),
        ("NETSYNC_SURREAL_URL", ""),
    ],
)
def test_a_bad_analytics_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, raw: str
) -> None:
    from netsync.settings import AnalyticsSettings

    monkeypatch.setenv("NETSYNC_SURREAL_URL", "ws://toxiproxy:24001/rpc")
    monkeypatch.setenv(var, raw)
    with pytest.raises(ConfigError, match=var):
        AnalyticsSettings.from_env()
