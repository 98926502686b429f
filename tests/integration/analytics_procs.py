"""The analytics role as a process for tests (tests/integration/test_analytics.py): the test's own
SurrealDB session writing rows as the projector does, the role with its volume and HTTP reads, a
SurrealDB restarted under libfaketime, and the planted bugs registered for the child process."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from surrealdb import AsyncSurreal

from harness.images import Images
from harness.waiting import await_until
from netsync.projection import UPSERT
from tests.integration.netsync_procs import READY_TIMEOUT, NetsyncProcess, SurrealServer, free_port

DEADLINE = 60.0


async def until(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> None:
    async def probe() -> Any:
        return check()

    await await_until(probe, what, timeout=timeout)


class Store:
    """The test's own SurrealDB session: writes rows exactly as the projector does."""

    def __init__(self, server: SurrealServer) -> None:
        self.server = server

    async def _session(self) -> Any:
        db = AsyncSurreal(self.server.ws_url)
        await db.connect()
        await db.signin({"username": "root", "password": "root"})
        await db.query_raw(
            "DEFINE NAMESPACE IF NOT EXISTS solar; USE NS solar; DEFINE DATABASE IF NOT EXISTS netsync;"
        )
        await db.use("solar", "netsync")
        return db

    async def write(self, cids: range, prefix: str = "c", keys: int = 5) -> None:
        db = await self._session()
        try:
            for i in cids:
                params = {
                    "tb": "sentiment",
                    "cid": f"{prefix}{i}",
                    "key": f"k{i % keys}",
                    "value": i,
                    "seq": i,
                }
                res = await db.query_raw(UPSERT, params)
                assert res["result"][0]["status"] == "OK", res
        finally:
            await db.close()

    async def define(self) -> None:
        db = await self._session()
        try:
            await db.query_raw("DEFINE TABLE IF NOT EXISTS sentiment CHANGEFEED 1h;")
        finally:
            await db.close()

    async def feed(self) -> list[dict[str, Any]]:
        db = await self._session()
        try:
            res = await db.query_raw("SHOW CHANGES FOR TABLE sentiment SINCE 0 LIMIT 1000;")
            return res["result"][0]["result"]
        finally:
            await db.close()


class Analytics:
    def __init__(self, tmp: Path, server: SurrealServer, bugs: str = "", **env: str) -> None:
        self.port = free_port()
        self.state = tmp / "analytics-volume"
        self.proc = NetsyncProcess(
            "analytics",
            {
                "NETSYNC_BUGGIFY": bugs,
                "NETSYNC_SURREAL_URL": server.ws_url,
                "NETSYNC_HTTP_PORT": str(self.port),
                "NETSYNC_ANALYTICS_DIR": str(self.state),
                "NETSYNC_ANALYTICS_POLL_MS": "50",
                **env,
            },
            workdir=tmp / "analytics",
        )

    async def start(self) -> None:
        """Start it and wait until it has connected, so that it defined the table with its changefeed
        before the test writes a row: a row written first would create the table without one."""
        self.proc.start()
        await self.proc.await_http_ready(self.port)
        await until(lambda: self.health()["connected_surreal"], "analytics to connect to SurrealDB")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
            return r.read()

    def lines(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.get(path).decode().splitlines()]

    def applied(self) -> list[dict[str, Any]]:
        return [rec for rec in self.lines("/applied") if rec["type"] == "applied"]

    def gaps(self) -> list[dict[str, Any]]:
        return [rec for rec in self.lines("/applied") if rec["type"] == "gap"]

    async def await_applied(self, n: int, timeout: float = DEADLINE) -> None:
        await until(
            lambda: self.proc.running and len(self.applied()) >= n, f"analytics to apply {n} changes", timeout
        )

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz"))


def assert_exactly_once(analytics: Analytics, cids: set[str]) -> None:
    applied = [rec["cid"] for rec in analytics.applied()]
    assert sorted(applied) == sorted(cids), "every change applied exactly once"
    view = {r["key"]: r for r in analytics.lines("/view")}
    latest: dict[str, int] = {}
    for cid in cids:
        i = int(cid.lstrip("abcdefghijklmnopqrstuvwxyz"))
        latest[f"k{i % 5}"] = max(latest.get(f"k{i % 5}", -1), i)
    assert {k: r["stream_seq"] for k, r in view.items()} == latest
    assert all(r["value"] == r["stream_seq"] for r in view.values())


class SteppedSurreal(SurrealServer):
    """SurrealServer whose next start runs under libfaketime with `FAKETIME=offset`."""

    offset: str | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> SteppedSurreal:
        env = None
        if self.offset is not None:
            images = Images("offline")
            debs = images.builds.debs("netsync", images.spec["netsync"]["debs"])
            lib = next(debs.glob("usr/lib/*/faketime/libfaketimeMT.so.1"))
            env = {**os.environ, "LD_PRELOAD": str(lib), "FAKETIME": self.offset, "FAKETIME_DONT_RESET": "1"}
        self._spawn(self.command(), env=env)
        self._wait_ready(timeout)
        return self
