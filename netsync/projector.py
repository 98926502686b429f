"""The projector: the only writer of SurrealDB (docs/contract.md, "Projector").

A durable pull consumer on the stream; each commitment is upserted into
`sentiment:<cid>` and acked only once the write succeeded, so a crash at any
moment leaves the message to be redelivered, and a redelivery rewrites the same
row. During a SurrealDB outage nothing is acked: the message in hand is retried
with backoff (capped at 2 s) while the batch behind it is kept alive with
in-progress acks. A message that can never be projected is dead-lettered (docs/contract.md,
"Dead letters"): logged, counted and terminated, so it cannot stall the messages behind it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from prometheus_client import disable_created_metrics

from netsync import buggify
from netsync.changefeed import DEFAULT_RETENTION, retention_from_env
from netsync.logs import Log
from netsync.projection import CREATE, UPSERT, Malformed, parse_body
from netsync.projector_http import Metrics, start_http
from netsync.projector_nats import BACKOFF_CAP, BACKOFF_FIRST, StreamSide
from netsync.settings import ConfigError, ProjectorSettings, env_int
from netsync.surreal import StatementFailed, SurrealConnection, refused
from netsync.untrusted import loads

BATCH = 32
FETCH_TIMEOUT = 1.0
# A write SurrealDB refuses this many times in a row (about 7 s with the backoff) is permanent.
REFUSALS = 8


class DeadLetter(Exception):
    """A message no retry can write: `kind` is `malformed` (seen before writing) or `refused`."""

    def __init__(self, kind: str, reason: str, attempts: int = 0) -> None:
        super().__init__(reason)
        self.kind = kind
        self.attempts = attempts


class Projector(StreamSide):
    def __init__(
        self,
        settings: ProjectorSettings,
        log: Log,
        ack_wait: float = 30.0,
        changefeed: str = DEFAULT_RETENTION,
    ) -> None:
        self.s = settings
        self.log = log
        self.ack_wait = ack_wait
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.nc: Any = None
        self.js: Any = None
        self.surreal = SurrealConnection(
            settings, log, lambda up: self.metrics.surreal_connected.set(1 if up else 0), changefeed
        )
        self.last_seq = 0
        # Set once the durable consumer is bound on the stream, cleared when the connection drops or
        # JetStream says the stream or consumer is gone: /healthz reads it, and asks NATS nothing.
        self.consuming = False
        self._confirming: asyncio.Task[None] | None = None
        self.bugs = settings.bugs  # netsync.buggify
        buggify.announce(self.bugs, "projector", log)

    # -- lifecycle ------------------------------------------------------------

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.log.info("stopping")
            self.stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        server = await start_http(self.health, self.metrics.registry, self.s.http_port)
        self.log.info("http listening", port=self.s.http_port)
        watcher = asyncio.create_task(self.surreal.watch(self.stopping, self._pause))
        try:
            await self._connect_nats()
            if not self.stopping.is_set():
                await self._consume()
        finally:
            watcher.cancel()
            server.close()
            await self.surreal.drop()
            if self.nc is not None:
                try:
                    if self.nc.is_connected:
                        await self.nc.flush(timeout=2)  # the last acks
                    await asyncio.wait_for(self.nc.close(), 5)
                except Exception as e:
                    self.log.warning("nats close failed", error=repr(e))
            self.log.info("stopped", last_seq=self.last_seq)
        return 0

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass

    # -- consuming --------------------------------------------------------------

    async def _consume(self) -> None:
        sub = await self._subscribe()
        delay = BACKOFF_FIRST
        while sub is not None and not self.stopping.is_set():
            try:
                msgs = await sub.fetch(batch=BATCH, timeout=FETCH_TIMEOUT)
            except nats.errors.TimeoutError:
                continue  # nothing new, or NATS is away: nats-py reconnects meanwhile
            except nats.js.errors.NotFoundError as e:
                self.log.warning("consumer gone, setting it up again", error=repr(e))
                await self._unsubscribe(sub)
                sub = await self._subscribe()
                continue
            except Exception as e:
                self.log.warning("fetch failed, retrying", error=repr(e), retry_in=delay)
                await self._pause(delay)
                delay = min(delay * 2, BACKOFF_CAP)
                if isinstance(e, nats.js.errors.ServiceUnavailableError) and await self._consumer_gone():
                    # A deleted stream or consumer answers a fetch with "no responders"
                    # (503), not "not found": set the consumer up again.
                    self.log.warning("consumer gone, setting it up again", error=repr(e))
                    await self._unsubscribe(sub)
                    sub = await self._subscribe()
                continue
            delay = BACKOFF_FIRST
            self.consuming = True  # messages came: the consumer is there, whatever a lookup said
            latest = self._latest_by_key(msgs) if "wrong-value" in self.bugs else None
            for i, msg in enumerate(msgs):
                if self.stopping.is_set() or not await self._handle(msg, msgs[i + 1 :], latest):
                    await self._nak(msgs[i:])
                    break
        if sub is not None:
            await self._unsubscribe(sub)

    @staticmethod
    def _latest_by_key(msgs: Sequence[Msg]) -> dict[str, int]:
        """buggify wrong-value: each key's last value in the batch ("last write wins", misapplied)."""
        latest = {}
        for m in msgs:
            try:
                body = parse_body(m.data)
            except Malformed:
                continue
            latest[body["key"]] = body["value"]
        return latest

    # -- one message ----------------------------------------------------------

    async def _handle(self, msg: Msg, behind: Sequence[Msg], latest: dict[str, int] | None = None) -> bool:
        """Project one message; False when stopping before it could be written."""
        seq = msg.metadata.sequence.stream
        try:
            body = parse_body(msg.data)
            if latest is not None:
                body["value"] = latest.get(body["key"], body["value"])
            early = "ack-before-write" in self.bugs
            if early:
                await self._ack(msg, body["cid"], seq)
            if not await self._write(body["cid"], body, seq, [msg, *behind]):
                return False
        except Malformed as e:
            await self._dead_letter(msg, DeadLetter("malformed", str(e)))
            return True
        except DeadLetter as e:
            await self._dead_letter(msg, e)
            return True
        cid = body["cid"]
        if not early:
            await self._ack(msg, cid, seq)
        self.last_seq = seq
        self.metrics.projected.inc()
        self.metrics.last_seq.set(seq)
        self.log.info("projected", cid=cid, seq=seq, key=body["key"], value=body["value"])
        return True

    async def _dead_letter(self, msg: Msg, e: DeadLetter) -> None:
        """The dead-letter policy (docs/contract.md): one error line naming the cid, seq and reason,
        the counter, and a term, so JetStream never redelivers it. The message stays in the stream."""
        seq = msg.metadata.sequence.stream
        try:
            cid = loads(msg.data).get("cid")
        except (ValueError, AttributeError):
            cid = None
        self.log.error(
            "dead-lettered",
            cid=cid if isinstance(cid, str) else None,
            seq=seq,
            reason=str(e),
            attempts=e.attempts,
            cause=e.kind,
            body=msg.data[:200].decode(errors="replace"),
        )
        self.metrics.dead_letters.inc()
        try:
            await msg.term()
        except Exception as err:  # redelivered after ack_wait, and dead-lettered again
            self.log.warning("term failed", seq=seq, error=repr(err))

    async def _ack(self, msg: Msg, cid: str, seq: int) -> None:
        try:
            await msg.ack()
        except Exception as e:  # it will be redelivered, and rewrite the same row
            self.log.warning("ack failed", cid=cid, seq=seq, error=repr(e))

    async def _write(self, cid: str, body: dict[str, Any], seq: int, held: Sequence[Msg]) -> bool:
        params = {"tb": self.s.table, "cid": cid, "key": body["key"], "value": body["value"], "seq": seq}
        delay = BACKOFF_FIRST
        attempt = refusals = 0
        keep_alive: asyncio.Task[None] | None = None
        try:
            while True:
                attempt += 1
                try:
                    await self.surreal.query(CREATE if "duplicate-rows" in self.bugs else UPSERT, params)
                    if attempt > 1:
                        self.log.info("write succeeded after retries", cid=cid, seq=seq, attempts=attempt)
                    return True
                except Exception as e:
                    self.metrics.write_failures.inc()
                    refusals += refused(e) or (
                        "store-failure-refused" in self.bugs and isinstance(e, StatementFailed)
                    )
                    if refusals >= REFUSALS:
                        reason = f"SurrealDB refused it {refusals} times: {e}"
                        raise DeadLetter("refused", reason, attempt) from e
                    self.log.warning(
                        "surreal write failed, not acking; retrying",
                        cid=cid,
                        seq=seq,
                        attempt=attempt,
                        error=repr(e),
                        retry_in=delay,
                    )
                if keep_alive is None:
                    keep_alive = asyncio.create_task(self._keep_alive(held))
                if self.stopping.is_set():
                    return False
                await self._pause(delay)
                if self.stopping.is_set():
                    return False
                delay = min(delay * 2, BACKOFF_CAP)
        finally:
            if keep_alive is not None:
                keep_alive.cancel()

    async def _keep_alive(self, held: Sequence[Msg]) -> None:
        """While a write is retried, tell JetStream the held messages are in progress,
        so they are not redelivered behind our back however long SurrealDB is away."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for m in held:
                try:
                    await m.in_progress()
                except Exception:
                    pass

    # -- HTTP -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "name": self.s.name,
            # Connected, with the stream and its consumer in place (docs/contract.md, "Health").
            "connected_nats": bool(self.consuming and self.nc is not None and self.nc.is_connected),
            "connected_surreal": self.surreal.connected,
            "last_seq": self.last_seq,
        }


def main() -> int:
    try:
        settings = ProjectorSettings.from_env()
        # Not in the contract's table: a test hook, so redelivery after a kill
        # need not take the contract's 30 s.
        ack_wait = env_int("NETSYNC_ACK_WAIT_MS", 30_000) / 1000
        changefeed = retention_from_env()
        for var, ident in (
            ("NETSYNC_SURREAL_NS", settings.surreal_ns),
            ("NETSYNC_SURREAL_DB", settings.surreal_db),
        ):
            if "`" in ident or "\\" in ident:
                raise ConfigError(f"{var}={ident!r} may not contain a backtick or a backslash")
    except ConfigError as e:
        Log("projector").error("bad configuration", error=str(e))
        return 2
    disable_created_metrics()  # no *_created series beside each counter
    log = Log(settings.name)
    return asyncio.run(Projector(settings, log, ack_wait, changefeed).run())
