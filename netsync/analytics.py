"""The analytics role (docs/contract.md, "Analytics"): follows the projected table through SurrealDB's
changefeed into a view (per key the latest value, its cid and stream_seq), at least once in and
exactly once in the view, and says when the feed did not give it every change.

Each poll is one transaction: the next page of the database's feed (`SHOW CHANGES FOR DATABASE`:
LIMIT counts every table's entries, so a short page is the feed's end) from the cursor, the table's row
count (or its cids, when auditing) and the server's clock, all from one snapshot. A page is applied
(each new cid appended to the applied log, fsynced), then the cursor is saved (fsynced): a crash
between the two rereads the page, whose cids are already applied. Caught up, the table's rows must
all be applied or reported: more rows than that means changes the feed never gave (retention swept
them, or they were stamped below the cursor), and the next poll lists their cids as `gap` lines. A
server clock behind the cursor (SurrealDB restarted with its clock stepped back, stamping new rows
below the cursor) is a `gap` line too, and the feed is read again from 0."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    disable_created_metrics,
    generate_latest,
)

from netsync import buggify
from netsync.analytics_http import Metrics, start_http
from netsync.analytics_scout import Scout
from netsync.changefeed import (
    Page,
    State,
    StateError,
    parse_page,
    retention_from_env,
    stamp_at,
    stamp_ms,
    unread,
)
from netsync.logs import Log
from netsync.settings import AnalyticsSettings, ConfigError
from netsync.surreal import StatementFailed, SurrealConnection, SurrealUnavailable, call, check

BACKOFF_FIRST, BACKOFF_CAP = 0.1, 2.0
CHECK_INTERVAL = 1.0  # seconds between two counts of the table
RESCAN_S = 2.0  # how far back the feed is read again when the table holds rows it did not give


class FeedConnection(SurrealConnection):
    """SurrealConnection, answering each statement's result."""

    async def answer(self, sql: str, timeout: float = 10.0) -> list[Any]:
        try:
            db = await self._connection()
        except Exception as e:
            raise SurrealUnavailable(f"cannot connect: {e!r}") from e
        try:
            response = await call(db.query_raw(sql), timeout)
            check(response)
        except Exception as e:
            if not isinstance(e, StatementFailed):  # the connection may be broken: open it again
                await self.drop(db)
            raise
        return [stmt.get("result") for stmt in response.get("result") or [] if isinstance(stmt, dict)]


class Analytics:
    def __init__(self, settings: AnalyticsSettings, log: Log, changefeed: str = "1h") -> None:
        self.s = settings
        self.log = log
        self.bugs = settings.bugs  # netsync.buggify
        buggify.announce(self.bugs, "analytics", log)
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.surreal = FeedConnection(
            settings,  # type: ignore[arg-type]  # the same connection fields as the projector's
            log,
            self._connection_changed,
            changefeed,
        )
        self.changefeed = changefeed
        self._table_checked = False
        self._no_feed_reported = False
        self._ahead_logged = False
        self._rescan_from: int | None = None  # the cursor before the last seconds were read again
        self._late = 0  # changes found below a cursor already past them, over the process's life
        self._late_at_rescan = 0  # ... when the last seconds were last read again
        self.state = State(
            Path(settings.state_dir),
            guard="apply-out-of-order" not in self.bugs,
            lazy="cursor-before-apply" in self.bugs,
        )
        self.auditing = False
        self.caught_up = False
        self.scout = Scout(settings, log, self.metrics) if settings.nats_servers else None
        self._checked_at = float("-inf")
        self.metrics.cursor.set(self.state.cursor)
        self.metrics.applied.inc(self.state.applied)
        self.metrics.view_keys.set(len(self.state.view.rows))

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.log.info("stopping")
            self.stopping.set()

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        server = await start_http(self._body, self.s.http_port)
        self.log.info(
            "following",
            table=self.s.table,
            cursor=self.state.cursor,
            applied=self.state.applied,
            port=self.s.http_port,
        )
        scout = asyncio.create_task(self.scout.follow(self.stopping, self._pause)) if self.scout else None
        delay, down = BACKOFF_FIRST, False
        try:
            while not self.stopping.is_set():
                try:
                    more = await self.poll()
                except Exception as e:  # SurrealDB away, a refused statement, a page not understood
                    if not down:
                        self.log.warning("changefeed read failed, retrying", error=repr(e), retry_in=delay)
                        down = True
                    await self._pause(delay)
                    delay = min(delay * 2, BACKOFF_CAP)
                    continue
                if down:
                    self.log.info("changefeed readable again", cursor=self.state.cursor)
                delay, down = BACKOFF_FIRST, False
                if not more:
                    await self._pause(self.s.poll_interval)
        finally:
            server.close()
            if scout is not None and self.scout is not None:
                scout.cancel()
                await self.scout.close()
            await self.surreal.drop()
            self.state.close()
            self.log.info("stopped", cursor=self.state.cursor, applied=self.state.applied)
        return 0

    # -- one poll ---------------------------------------------------------------

    def _connection_changed(self, up: bool) -> None:
        self.metrics.surreal_connected.set(1 if up else 0)
        if not up:
            self._table_checked = False  # a restarted or replaced server: look at its table again

    async def _check_table(self) -> None:
        """Once per connection: a table defined without a changefeed (its first row written before
        anyone defined it) gives no change at all; a different retention is the operator's to know."""
        answer = await self.surreal.answer("INFO FOR DB;")
        tables = answer[0].get("tables") if answer and isinstance(answer[0], dict) else None
        definition = tables.get(self.s.table) if isinstance(tables, dict) else None
        self._table_checked = True
        if not isinstance(definition, str):
            return  # not there yet: defined on connecting, so a race with a REMOVE; seen next time
        if " CHANGEFEED " not in definition and not self._no_feed_reported:
            self._no_feed_reported = True
            detail = f"the table has no changefeed, so none of its rows can be followed: {definition}"
            self.state.append([self._gap("no-changefeed", detail, time.time())])
        elif f" CHANGEFEED {self.changefeed}" not in definition:
            self.log.warning(
                "the table's changefeed retention is not ours", definition=definition, ours=self.changefeed
            )

    async def poll(self) -> bool:
        """Read and apply one page; True when more may follow at once."""
        if not self._table_checked:
            await self._check_table()
        tb, cursor = self.s.table, self.state.cursor
        # The table's count is checked once caught up, at most once per CHECK_INTERVAL (it scans the
        # table: 60 ms at 20,000 rows); its cids only when auditing.
        counting = self.caught_up and time.monotonic() - self._checked_at >= CHECK_INTERVAL
        if self.auditing:
            probe = f"SELECT VALUE cid FROM `{tb}`; "
        elif counting:
            probe = f"SELECT count() FROM `{tb}` GROUP ALL; "
        else:
            probe = ""
        answer = await self.surreal.answer(
            f"BEGIN; SHOW CHANGES FOR DATABASE SINCE {cursor} LIMIT {self.s.page_limit}; {probe}"
            "RETURN time::now(); COMMIT;"
        )
        want = 4 if probe else 3  # the statements' results and COMMIT's
        if len(answer) < want:
            raise SurrealUnavailable(f"the poll's transaction answered {len(answer)} results, not {want}")
        feed, rows, now = answer[-want], answer[-3] if probe else None, answer[-2]
        now_ms = int(now.timestamp() * 1000) if hasattr(now, "timestamp") else int(time.time() * 1000)
        page = parse_page(feed, cursor, self.s.page_limit, tb)
        checking = "skip-gap" not in self.bugs
        if checking and cursor > 0 and now_ms < stamp_ms(cursor - 1):
            self._clock_back(cursor, now_ms)
            return True
        ceiling = stamp_at(now_ms)
        ahead = checking and page.next_cursor > ceiling + (1 << 16)
        if ahead:
            # Entries stamped past the server's clock: written before a restart with the clock stepped
            # back, read then. The cursor stays at the clock, where the new rows are stamped.
            if not self._ahead_logged:
                self.log.warning(
                    "feed entries stamped ahead of the server's clock: the cursor follows the clock",
                    last=page.last,
                    server_ms=now_ms,
                )
                self._ahead_logged = True
            page.cursor_cap = max(cursor, ceiling)
        self._apply(page)
        self.caught_up = not page.full or ahead
        if page.full and not ahead:
            last_ms = stamp_ms(page.last or cursor)
            self.metrics.lag_s.set(max(0.0, (now_ms - last_ms) / 1000))
            self.metrics.lag_vs.set(max(0, stamp_at(now_ms) - self.state.cursor))
            return True
        self.metrics.lag_s.set(0)
        self.metrics.lag_vs.set(0)
        if self.auditing:
            self.auditing = False
            self._report_unread(rows if isinstance(rows, list) else [])
        elif counting:
            self._checked_at = time.monotonic()
            count = (
                rows[0].get("count", 0)
                if isinstance(rows, list) and rows and isinstance(rows[0], dict)
                else 0
            )
            self.metrics.store_rows.set(count)
            missing = checking and count > len(self.state.view.cids) and count > self.state.known
            # A reading again that found late changes does not make a row still missing a loss: while
            # entries keep turning up late (the cursor held at a server clock stepped back, where every
            # write in flight is stamped just below it) the next one may be late too. Read again until a
            # reading finds none late; only then audit and report what is still missing.
            found_late = self._rescan_from is not None and self._late > self._late_at_rescan
            if missing and (self._rescan_from is None or found_late):
                # First read the last RESCAN_S again: with concurrent writers SurrealDB makes an entry
                # visible after a later-stamped one (measured), below a cursor already past it.
                back = max(0, min(cursor, stamp_at(stamp_ms(cursor) - int(RESCAN_S * 1000))))
                self.log.warning(
                    "the table holds rows the feed did not give: reading the last seconds again",
                    rows=count,
                    applied=len(self.state.view.cids),
                    reported=len(self.state.gapped),
                    cursor=cursor,
                    back_to=back,
                    late_so_far=self._late,
                )
                self._rescan_from = cursor
                self._late_at_rescan = self._late
                self.state.save_cursor(back)
                self.metrics.cursor.set(back)
                return True
            self._rescan_from = None
            if missing:
                self.log.warning("rows still missing after reading again: auditing", rows=count)
                self.auditing = True
                return True
        return False

    def _apply(self, page: Page) -> None:
        now = time.time()
        lines: list[dict[str, Any]] = []
        for stamp, bound in page.backwards:
            lines.append(
                self._gap("stamp-back", f"versionstamp {stamp} at or below {bound} in one page", now)
            )
        if page.ignored:
            self.log.info("feed entries that are no row", entries=page.ignored[:20])
        if "cursor-before-apply" in self.bugs:
            self.state.save_cursor(page.capped_cursor)
        changes = reversed(page.changes) if "apply-out-of-order" in self.bugs else page.changes
        for ch in changes:
            outcome = self.state.view.apply(ch, self.state.guard)
            if outcome == "duplicate":
                self.metrics.duplicates.inc()
                continue
            self.metrics.applied.inc()
            if outcome == "stale":
                self.metrics.stale.inc()
            lines.append({"t": now, "type": "applied", **ch.line()})
            if self._rescan_from is not None and ch.versionstamp < self._rescan_from:
                self._late += 1
                self.metrics.late.inc()
                self.log.warning(
                    "a change visible only after the cursor passed its stamp",
                    cid=ch.cid,
                    versionstamp=ch.versionstamp,
                    passed_by=self._rescan_from,
                )
            self.log.info(
                "applied", cid=ch.cid, versionstamp=ch.versionstamp, key=ch.key, stream_seq=ch.stream_seq
            )
        self.state.applied += sum(1 for rec in lines if rec["type"] == "applied")
        if lines:
            self.state.append(lines)
        if page.capped_cursor != self.state.cursor:
            self.state.save_cursor(page.capped_cursor)
        self.metrics.cursor.set(self.state.cursor)
        self.metrics.view_keys.set(len(self.state.view.rows))

    def _gap(
        self, kind: str, detail: str, now: float, cid: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        self.metrics.gaps.labels(kind).inc()
        self.state.gaps += 1
        self.log.error("changefeed gap", cid=cid, kind=kind, detail=detail, **fields)
        rec: dict[str, Any] = {"t": now, "type": "gap", "kind": kind, "detail": detail}
        if cid is not None:
            rec["cid"] = cid
            self.state.gapped.add(cid)
        return rec

    def _clock_back(self, cursor: int, now_ms: int) -> None:
        detail = (
            f"the server's clock ({now_ms} ms) is behind the cursor {cursor} ({stamp_ms(cursor - 1)} ms): "
            "its new rows are stamped below the cursor; reading the feed again from 0"
        )
        self.state.append([self._gap("clock-back", detail, time.time(), cursor=cursor, server_ms=now_ms)])
        self.state.save_cursor(0)
        self.metrics.cursor.set(0)

    def _report_unread(self, table_cids: list[Any]) -> None:
        known = self.state.view.cids | self.state.gapped
        missing = unread(table_cids, known)
        now = time.time()
        detail = (
            "a row of the table whose change the feed never gave after cursor {c}: swept by the retention, "
            "or stamped below the cursor"
        )
        lines = [self._gap("unread", detail.format(c=self.state.cursor), now, cid) for cid in missing]
        if lines:
            self.state.append(lines)

    # -- HTTP -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "name": self.s.name,
            "connected_surreal": self.surreal.connected,
            "cursor": self.state.cursor,
            "applied": self.state.applied,
            "gaps": self.state.gaps,
            "followed": self.state.known,
            "caught_up": self.caught_up,
            "connected_nats": self.scout.connected if self.scout is not None else None,
        }

    def _body(self, path: str) -> tuple[str, str, bytes]:
        if path == "/healthz":
            return "200 OK", "application/json", json.dumps(self.health()).encode()
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        if path == "/applied":
            self.state.flush()
            return "200 OK", "application/x-ndjson", self.state.log_path.read_bytes()
        if path == "/view":
            rows = sorted(self.state.view.rows.values(), key=lambda r: r.key)
            return (
                "200 OK",
                "application/x-ndjson",
                "".join(json.dumps(r.line()) + "\n" for r in rows).encode(),
            )
        if path == "/telemetry":
            telemetry = self.scout.telemetry if self.scout is not None else {}
            agents = [telemetry[a] for a in sorted(telemetry)]
            return "200 OK", "application/x-ndjson", "".join(json.dumps(a) + "\n" for a in agents).encode()
        return "404 Not Found", "application/json", b'{"error": "not found"}'


def main() -> int:
    try:
        settings = AnalyticsSettings.from_env()
        changefeed = retention_from_env()
    except ConfigError as e:
        Log("analytics").error("bad configuration", error=str(e))
        return 2
    disable_created_metrics()
    log = Log(settings.name)
    try:
        analytics = Analytics(settings, log, changefeed)
    except (StateError, OSError) as e:
        log.error("cannot open the analytics volume", error=str(e))
        return 2
    return asyncio.run(analytics.run())
