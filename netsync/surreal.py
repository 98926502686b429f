"""The projector's one SurrealDB connection: opened on demand, checked while idle, dropped on any
failure and opened again on the next call. Every SDK call runs in a task of its own with a
deadline, so a socket that drops mid-call is an error of the call, never a cancellation of ours."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from surrealdb import AsyncSurreal
from websockets.exceptions import WebSocketException

from netsync.logs import Log
from netsync.settings import ProjectorSettings

OP_TIMEOUT = 10.0


class SurrealUnavailable(Exception):
    """The SurrealDB connection failed, timed out or was lost mid-call."""


class StatementFailed(Exception):
    """SurrealDB answered with an error (a transaction conflict, say); the connection is fine.
    `message` is SurrealDB's text; `kind` and `detail` its structured kind (3.x: `Internal`,
    `Query` with `TransactionConflict`, ...), None from a server that sends none."""

    def __init__(self, message: str, kind: str | None = None, detail: str | None = None) -> None:
        super().__init__(f"surreal statement failed: {message}")
        self.message = message
        self.kind = kind
        self.detail = detail

    def __repr__(self) -> str:  # the logs show what the classification was decided on
        return f"StatementFailed({self.message!r}, kind={self.kind!r}, detail={self.detail!r})"


async def call(aw: Awaitable[Any], timeout: float = OP_TIMEOUT) -> Any:
    """Run one SDK call in its own task. The SDK cancels the futures of calls in flight when the
    socket drops; the separate task keeps that from looking like a cancellation of ours."""
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    finally:
        if not task.done():
            task.cancel()
    if not done:
        raise SurrealUnavailable(f"no answer within {timeout:.0f} s")
    if task.cancelled():
        raise SurrealUnavailable("connection lost during the call")
    return task.result()


# What SurrealDB before 3.x said by code alone (surrealdb-types 3.3.5, error.rs `mod code`).
LEGACY_CODES = {-32009: ("Query", "TransactionConflict"), -32001: ("Connection", None)}


def _answer(error: Any, text: str) -> StatementFailed:
    """StatementFailed from one error of SurrealDB's answer: a statement's `{"status": "ERR",
    "result", "kind", "details"}` (text in `text`) or the call's `{"code", "message", "kind"}`."""
    if not isinstance(error, dict):
        return StatementFailed(str(error))
    kind, details = error.get("kind"), error.get("details")
    if isinstance(details, dict) and details.get("kind") == kind and isinstance(details.get("details"), dict):
        details = details["details"]  # SurrealDB 3.0.0 wrapped a statement's details twice
    detail = details.get("kind") if isinstance(details, dict) else None
    if kind is None and isinstance(error.get("code"), int):  # a server older than 3.x
        kind, detail = LEGACY_CODES.get(error["code"], (None, None))
    return StatementFailed(
        str(error.get(text)),
        kind if isinstance(kind, str) else None,
        detail if isinstance(detail, str) else None,
    )


def check(response: Any) -> None:
    """A raw query response; StatementFailed when SurrealDB refused a statement."""
    if not isinstance(response, dict):
        raise SurrealUnavailable(f"unexpected response {response!r}")
    if response.get("error") is not None:
        raise _answer(response["error"], "message")
    for stmt in response.get("result") or []:
        if isinstance(stmt, dict) and stmt.get("status") == "ERR":
            raise _answer(stmt, "result")


# SurrealDB's answer echoes the value it refused ("Found 'x' for field `key`...", "Couldn't coerce
# value for field ...: ...'x'", "An error occurred: x"), so a phrase anywhere in its text says
# nothing: a key may carry "IO error" and would then be retried forever, stalling the consumer. The
# kind decides where SurrealDB gives one; otherwise only its own words at the very start of the text,
# before anything it can echo, and only for the kinds its storage failures carry
# (surrealdb-core 3.3.5, err/to_types.rs; kvs/err.rs holds the texts):
# - a lost conflict is `Query` / `TransactionConflict`; a storage backend unreachable, `Connection`;
# - a commit that failed (its disk gave EIO) is `Query` / `NotExecuted` with the storage error's text
#   ("There was a problem with a transaction: WAL error: IO error: ... (os error 5)");
# - a storage error met mid-statement is `Internal` (or `NotAllowed`, a full disk), its text wrapped
#   ("There was a problem with the key-value store: There was a problem with a transaction: ...").
STORE_KINDS = {None, "Internal", "NotAllowed", "Query"}
STORE_WRAPPERS = ("There was a problem with the key-value store: ",)
STORE_FAILURES = (
    "There was a problem with a transaction:",
    "There was a problem with the datastore:",
    "There was a problem with the underlying datastore",  # SurrealDB 2.x
    "Connection to storage backend failed:",
    "The datastore is shutting down",
    "The datastore is in read-and-deletion-only mode",  # its disk is full
    "The transaction's commit outcome is unknown",  # the UPSERT is idempotent: write it again
    "Transaction conflict:",
    "Failed to commit transaction due to a read or write conflict",  # SurrealDB 2.x
    "I/O error:",
)


def store_failed(e: StatementFailed) -> bool:
    """Whether SurrealDB's error says its store failed or a transaction lost a conflict (retried,
    however long), rather than that it will not take the statement. Never from echoed text."""
    if e.kind == "Connection" or (e.kind, e.detail) == ("Query", "TransactionConflict"):
        return True
    if e.kind not in STORE_KINDS or (e.kind == "Query" and e.detail not in (None, "NotExecuted")):
        return False
    text = e.message
    while wrapper := next((w for w in STORE_WRAPPERS if text.startswith(w)), None):
        text = text[len(wrapper) :]
    return text.startswith(STORE_FAILURES)


def refused(error: BaseException) -> bool:
    """Whether a failed query was the statement's own fault, so that retrying the same one cannot
    help: SurrealDB answered with an error about it, or the client could not even send it (its
    parameters do not encode). Connecting, a lost or silent connection, a socket error, and an answer
    saying the store itself failed (store_failed) are not."""
    if isinstance(error, StatementFailed):
        return not store_failed(error)
    return not isinstance(error, SurrealUnavailable | OSError | TimeoutError | WebSocketException)


class SurrealConnection:
    def __init__(
        self,
        settings: ProjectorSettings,
        log: Log,
        on_change: Callable[[bool], None],
        changefeed: str | None = None,
    ) -> None:
        self.s = settings
        self.log = log
        self.on_change = on_change  # told True on connecting, False on dropping
        # The projected table's changefeed retention (a SurrealDB duration, checked by the caller):
        # the table is defined with it on connecting, before any row could create it without one.
        self.changefeed = changefeed
        self.db: Any = None
        self._lock = asyncio.Lock()
        self._down_logged = False

    @property
    def connected(self) -> bool:
        return self.db is not None

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, timeout: float = OP_TIMEOUT
    ) -> None:
        """Run `sql` on the connection (opened if needed). On a failure other than a refused
        statement the connection is dropped, to be opened again by the next call."""
        try:
            db = await self._connection()
        except Exception as e:  # whatever went wrong, no statement of ours was refused
            raise SurrealUnavailable(f"cannot connect: {e!r}") from e
        try:
            check(await call(db.query_raw(sql, params) if params else db.query_raw(sql), timeout))
        except Exception as e:
            if not isinstance(e, StatementFailed):
                await self.drop(db)
            raise

    async def watch(self, stopping: asyncio.Event, pause: Callable[[float], Awaitable[None]]) -> None:
        """Connect at start and check the connection while idle, so /healthz tells the truth before
        the first message and during an outage with nothing to write."""
        while not stopping.is_set():
            try:
                await self.query("RETURN 1;", timeout=5)
            except Exception as e:
                if not self._down_logged:
                    self.log.warning("surreal unreachable", error=repr(e))
                    self._down_logged = True
            await pause(1.0)

    async def _connection(self) -> Any:
        async with self._lock:
            if self.db is None:
                self.db = await self._connect()
                self._down_logged = False
                self.on_change(True)
                self.log.info(
                    "surreal connected", url=self.s.surreal_url, ns=self.s.surreal_ns, db=self.s.surreal_db
                )
            return self.db

    async def _connect(self) -> Any:
        db = AsyncSurreal(self.s.surreal_url)
        try:
            await call(db.connect())
            await call(db.signin({"username": self.s.surreal_user, "password": self.s.surreal_pass}))
            ns, name = self.s.surreal_ns, self.s.surreal_db
            # Identifiers cannot be query variables: quoted, and checked in the projector's main().
            define = (
                f"DEFINE NAMESPACE IF NOT EXISTS `{ns}`; USE NS `{ns}`; "
                f"DEFINE DATABASE IF NOT EXISTS `{name}`;"
            )
            check(await call(db.query_raw(define)))
            await call(db.use(ns, name))
            if self.changefeed is not None:
                # IF NOT EXISTS: a table already defined keeps its definition (and its feed).
                table = f"DEFINE TABLE IF NOT EXISTS `{self.s.table}` CHANGEFEED {self.changefeed};"
                check(await call(db.query_raw(table)))
        except BaseException:
            await self._close(db)
            raise
        return db

    async def drop(self, db: Any = None) -> None:
        """Drop the connection (`db`: only if it is still the current one)."""
        if db is None or db is self.db:
            db, self.db = self.db, None
            self.on_change(False)
        if db is not None:
            await self._close(db)

    @staticmethod
    async def _close(db: Any) -> None:
        try:
            await call(db.close(), timeout=2)
        except Exception:
            pass
