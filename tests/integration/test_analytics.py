"""The analytics role against a real SurrealDB 3.3.5 (a plain process): rows are written as the
projector writes them, and what the role applied is read back the way the harness will, from
GET /applied and GET /view. Crashes are SIGKILLs; the clock step is libfaketime under SurrealDB."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

import nats
import pytest

from harness.waiting import await_until as until_async
from netsync.changefeed import SUMMARY_SUBJECT, stamp_ms
from tests.integration.analytics_procs import Analytics, SteppedSurreal, Store, assert_exactly_once, until
from tests.integration.netsync_procs import NatsServer, SurrealServer, http_status


@pytest.fixture
def store(surreal_server: SurrealServer) -> Store:
    return Store(surreal_server)


async def test_rows_are_applied_once_each_and_a_rewrite_changes_nothing(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    analytics = Analytics(tmp_path, surreal_server)
    await analytics.start()
    try:
        await store.write(range(0, 120))
        await store.write(range(40, 60))  # a redelivery rewrites the same rows: new changes, same cids
        await analytics.await_applied(120)
        await until(lambda: analytics.health()["caught_up"], "analytics to catch up")
        assert_exactly_once(analytics, {f"c{i}" for i in range(120)})
        assert analytics.gaps() == []
        stamps = [rec["versionstamp"] for rec in analytics.applied()]
        assert stamps == sorted(stamps), "applied in the feed's order"
        await until(
            lambda: "netsync_analytics_duplicates_total 20.0" in analytics.get("/metrics").decode(),
            "the 20 rewrites to be read as duplicates",
        )
        assert len(analytics.applied()) == 120
        assert "netsync_analytics_applied_total 120.0" in analytics.get("/metrics").decode()
        assert analytics.health()["connected_surreal"] is True
        assert analytics.health()["followed"] == 120  # distinct cids, rewrites counted once
        assert http_status(f"http://127.0.0.1:{analytics.port}/nothing") == 404
        post = urllib.request.Request(f"http://127.0.0.1:{analytics.port}/view", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError, match="405"):
            urllib.request.urlopen(post, timeout=5)
    finally:
        analytics.proc.kill()


async def test_killed_and_restarted_it_resumes_from_its_cursor(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    analytics = Analytics(tmp_path, surreal_server, NETSYNC_ANALYTICS_PAGE="7")
    await analytics.start()
    try:
        await store.write(range(0, 100))
        await analytics.await_applied(30)
        analytics.proc.kill()  # mid-catch-up: pages of 7
        cursor = json.loads((analytics.state / "cursor.json").read_text())["cursor"]
        await store.write(range(100, 200))
        await analytics.start()
        started = [rec for rec in analytics.proc.lines() if rec["msg"] == "following"]
        assert started[-1]["cursor"] == cursor, "it starts from the cursor it saved"
        await analytics.await_applied(200)
        await until(lambda: analytics.health()["caught_up"], "analytics to catch up")
        assert_exactly_once(analytics, {f"c{i}" for i in range(200)})
        assert analytics.gaps() == []
    finally:
        analytics.proc.kill()


async def test_surrealdb_restarted_while_following(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    analytics = Analytics(tmp_path, surreal_server)
    await analytics.start()
    try:
        await store.write(range(0, 50))
        await analytics.await_applied(50)
        surreal_server.stop()  # SIGKILL
        await until(
            lambda: analytics.health()["connected_surreal"] is False,
            "analytics to see SurrealDB gone",
        )
        surreal_server.start()
        await store.write(range(50, 100))
        await analytics.await_applied(100)
        assert_exactly_once(analytics, {f"c{i}" for i in range(100)})
        assert analytics.gaps() == []
        stamps = [rec["versionstamp"] for rec in analytics.applied()]
        assert stamps == sorted(stamps), "the restarted server's stamps go on from above the old ones"
    finally:
        analytics.proc.kill()


async def test_an_outage_longer_than_the_retention_is_reported_as_a_gap(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    analytics = Analytics(tmp_path, surreal_server, NETSYNC_CHANGEFEED_RETENTION="1s")
    await analytics.start()  # defines the table with its 1 s changefeed
    try:
        await store.write(range(0, 10))
        await analytics.await_applied(10)
        analytics.proc.kill()
        await store.write(range(10, 30))

        async def swept() -> bool:  # SurrealDB sweeps expired entries about every 30 s
            return len(await store.feed()) == 0

        await until_async(swept, "SurrealDB to sweep the expired changes", timeout=90)
        await store.write(range(30, 35))
        await analytics.start()
        await analytics.await_applied(15)

        await until(lambda: len(analytics.gaps()) >= 20, "analytics to report the 20 swept changes")
        gaps = analytics.gaps()
        assert sorted(g["cid"] for g in gaps) == sorted(f"c{i}" for i in range(10, 30))
        assert {g["kind"] for g in gaps} == {"unread"}
        assert sorted(rec["cid"] for rec in analytics.applied()) == sorted(
            f"c{i}" for i in [*range(10), *range(30, 35)]
        )
        errors = [
            rec
            for rec in analytics.proc.lines()
            if rec["level"] == "error" and rec["msg"] == "changefeed gap"
        ]
        assert sorted(rec["cid"] for rec in errors) == sorted(f"c{i}" for i in range(10, 30))
        assert 'netsync_analytics_gaps_total{kind="unread"} 20.0' in analytics.get("/metrics").decode()
    finally:
        analytics.proc.kill()


async def test_a_table_made_without_a_changefeed_is_reported_with_each_row(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    await store.write(range(0, 5))  # before anyone defined the table: SurrealDB makes it without a feed
    analytics = Analytics(tmp_path, surreal_server)
    await analytics.start()
    try:
        await until(lambda: len(analytics.gaps()) == 6, "the missing feed and its 5 rows reported")
        gaps = analytics.gaps()
        assert gaps[0]["kind"] == "no-changefeed" and "CHANGEFEED" not in gaps[0]["detail"]
        assert sorted(g.get("cid") for g in gaps[1:]) == [f"c{i}" for i in range(5)]
        assert analytics.applied() == [], "SHOW CHANGES gives nothing for rows written without a feed"
    finally:
        analytics.proc.kill()


async def test_other_tables_changes_between_ours_do_not_hide_them(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    """SurrealDB 3.3.5 applies SHOW CHANGES' LIMIT before the table filter: FOR TABLE sentiment
    LIMIT 5 answered only the table's definition while 12 entries of another table came first."""
    analytics = Analytics(tmp_path, surreal_server, NETSYNC_ANALYTICS_PAGE="5")
    await analytics.start()
    db = await store._session()
    try:
        await db.query_raw("DEFINE TABLE IF NOT EXISTS other CHANGEFEED 1h;")
        await store.write(range(0, 2))
        for i in range(20):
            await db.query_raw("CREATE type::record('other', $i) SET x = $i;", {"i": i})
        await store.write(range(2, 4))
        await analytics.await_applied(4)
        await until(
            lambda: "netsync_analytics_store_rows 4.0" in analytics.get("/metrics").decode(),
            "a count of the table after the writes",
        )
        assert_exactly_once(analytics, {f"c{i}" for i in range(4)})
        assert analytics.gaps() == []
    finally:
        await db.close()
        analytics.proc.kill()


async def test_planted_apply_out_of_order_leaves_older_values_in_the_view(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    await store.define()  # as the projector does on connecting
    await store.write(range(0, 20))  # before it starts: one page holds four changes per key
    analytics = Analytics(tmp_path, surreal_server, bugs="apply-out-of-order")
    await analytics.start()
    try:
        await analytics.await_applied(20)
        view = {r["key"]: r["stream_seq"] for r in analytics.lines("/view")}
        assert view == {f"k{i}": i for i in range(5)}, "the oldest change of each key won"
    finally:
        analytics.proc.kill()


async def test_planted_cursor_before_apply_loses_a_page_to_a_crash_and_reports_it(
    tmp_path: Path, surreal_server: SurrealServer, store: Store
) -> None:
    analytics = Analytics(tmp_path, surreal_server, bugs="cursor-before-apply")
    await analytics.start()
    try:
        await store.write(range(0, 50))
        await until(lambda: analytics.health()["applied"] == 50, "the page to be read")
        # Stamps older than the two seconds it reads again when rows are missing (RESCAN_S), and
        # younger than the ten its planted buffer waits before a flush (LAZY_FLUSH_S).
        await asyncio.sleep(3)
        await store.write(range(50, 51))
        await until(lambda: analytics.health()["applied"] == 51, "the last row to be read")
        analytics.proc.kill()  # the 51 lines were still in the buffer, the cursor past them on disk
        await analytics.start()
        await until(lambda: len(analytics.gaps()) >= 50, "the lost page to be reported as unread")
        assert [r["cid"] for r in analytics.applied()] == ["c50"], "found again: inside the two seconds"
        assert sorted(g["cid"] for g in analytics.gaps()) == sorted(f"c{i}" for i in range(50))
        late = [
            r
            for r in analytics.proc.lines()
            if r["msg"] == "a change visible only after the cursor passed its stamp"
        ]
        assert [r["cid"] for r in late] == ["c50"]
    finally:
        analytics.proc.kill()


async def test_the_scouts_summaries_land_in_the_view_per_agent(
    tmp_path: Path, surreal_server: SurrealServer, nats_server: NatsServer
) -> None:
    analytics = Analytics(tmp_path, surreal_server, NETSYNC_NATS_URL=nats_server.url)
    await analytics.start()
    nc = await nats.connect(nats_server.url)
    try:
        await until(lambda: analytics.health()["connected_nats"], "analytics to connect to NATS")
        figures = {"samples": 5, "peers_reachable_min": 2, "buffer_depth_max": 0, "nats_reachable_last": True}
        first = {"window_start": 10.0, "window_end": 11.0, "messages": 10, "agents": {"agent-1": figures}}
        second = {
            "window_start": 11.0,
            "window_end": 12.0,
            "messages": 5,
            "agents": {"agent-2": {**figures, "buffer_depth_max": 7, "nats_reachable_last": False}},
        }
        for body in (first, b"not json", {"agents": []}, second):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            await nc.publish(SUMMARY_SUBJECT, data)
        await nc.flush()
        await until(lambda: len(analytics.lines("/telemetry")) == 2, "both agents in the view")
        assert analytics.lines("/telemetry") == [
            {"agent": "agent-1", "window_start": 10.0, "window_end": 11.0, **figures},
            {"agent": "agent-2", "window_start": 11.0, "window_end": 12.0, **second["agents"]["agent-2"]},
        ]
        metrics = analytics.get("/metrics").decode()
        assert "netsync_analytics_telemetry_total 2.0" in metrics
        assert "netsync_analytics_telemetry_malformed_total 2.0" in metrics
    finally:
        await nc.close()
        analytics.proc.kill()


@pytest.mark.parametrize("bugs", ["", "skip-gap"])
async def test_a_clock_stepped_back_across_a_restart_is_reported_and_reread(
    tmp_path: Path, bugs: str
) -> None:
    with SteppedSurreal(tmp_path / "surreal") as server:
        store = Store(server)
        analytics = Analytics(tmp_path, server, bugs=bugs)
        await analytics.start()
        try:
            await store.write(range(0, 20))
            await analytics.await_applied(20)
            before = max(rec["versionstamp"] for rec in analytics.applied())
            server.stop()
            server.offset = "-600"  # ten minutes back
            server.start()
            await store.write(range(20, 40))
            if bugs == "skip-gap":  # it reads on from its cursor, above every new stamp: nothing comes
                await until(
                    lambda: "netsync_analytics_store_rows 40.0" in analytics.get("/metrics").decode(),
                    "a count of the table after the writes",
                )
                assert len(analytics.applied()) == 20 and analytics.gaps() == []
                return
            await analytics.await_applied(40)
            applied = analytics.applied()
            after = [rec["versionstamp"] for rec in applied if int(rec["cid"][1:]) >= 20]
            assert max(after) < before, "SurrealDB 3.3.5 stamps the new rows below the old ones"
            assert stamp_ms(before) - stamp_ms(max(after)) > 500_000
            gaps = analytics.gaps()
            assert [g["kind"] for g in gaps] == ["clock-back"]
            assert_exactly_once(analytics, {f"c{i}" for i in range(40)})
            # Its cursor now follows the server's clock, under the old entries: later rows are read too.
            await store.write(range(40, 60))
            await analytics.await_applied(60)
            await until(
                lambda: "netsync_analytics_store_rows 60.0" in analytics.get("/metrics").decode(),
                "a count of the table after the last writes",
            )
            assert [g["kind"] for g in analytics.gaps()] == ["clock-back"], "reported once, not again"
            assert_exactly_once(analytics, {f"c{i}" for i in range(60)})
        finally:
            analytics.proc.send_signal(signal.SIGKILL)
            analytics.proc.kill()
