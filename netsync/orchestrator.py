"""The orchestrator: receives decisions over libp2p (trio) and commits them to the
JetStream stream (asyncio, nats-py), crossing between the two at one seam,
netsync.bridge. It answers the agent with the PubAck's seq or "nats-unavailable"."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
import trio
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from netsync import buggify
from netsync.bridge import AsyncioBridge
from netsync.http import lifespan, respond, respond_json, serve_trio
from netsync.intents import CID_RULE, valid_cid
from netsync.logs import Log
from netsync.p2p import DECISION, Node
from netsync.settings import OrchestratorSettings, StreamSettings
from netsync.telemetry import SUMMARY_SUBJECT, Scout, pubsub

SUBJECT = "root.solar.command.sentiment.set"
CID_HEADER = "Correlation-Id"
WINDOW_MARGIN = 0.9  # treat a replay as past the window at 90 % of it
CLOCK_SLACK_S = 5.0
RECONNECT_BOUND = 60  # reconnect-gives-up: nats-py's default bound, 60 attempts 0.25 s apart


class Unavailable(Exception):
    pass


class Committer:
    """The asyncio side: one NATS connection, the stream, publishing and lookups.
    Every method runs on the bridge's asyncio loop."""

    def __init__(
        self,
        servers: str | list[str] | tuple[str, ...],
        stream: StreamSettings,
        publish_timeout: float,
        log: Log,
        bugs: frozenset[str] = frozenset(),
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.bugs = bugs  # netsync.buggify
        self.stream = stream
        self.publish_timeout = publish_timeout
        self.log = log
        self.nc: nats.NATS | None = None
        # Set once the stream was found or made (or took a publish), cleared when the connection
        # drops or JetStream says the stream is gone: /healthz reads it, and asks NATS nothing.
        self.stream_ready = False
        self._confirming: asyncio.Task[None] | None = None
        self.on_lookup: Callable[[], None] = lambda: None

    @property
    def ready(self) -> bool:
        """Connected to NATS with the stream in place, as last seen (docs/contract.md, "Health")."""
        return self.stream_ready and self.nc is not None and self.nc.is_connected

    async def _disconnected(self) -> None:
        self.stream_ready = False
        self.log.warning("nats disconnected")

    async def _reconnected(self) -> None:
        self.log.info("nats reconnected")
        self.stream_ready = False  # the server may have come back without it
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.create_task(self._confirm_stream())

    async def _confirm_stream(self) -> None:
        """After a reconnect, find (or make) the stream once, so that /healthz says so before the
        next publish would have; retried while connected, as JetStream may still be starting."""
        delay = 0.25
        while self.nc is not None and self.nc.is_connected and not self.stream_ready:
            try:
                await self.ensure_stream()
            except Exception as e:
                self.log.warning("stream not confirmed after a reconnect", error=f"{type(e).__name__}: {e}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def connect(self) -> None:
        async def error(e: Exception) -> None:
            self.log.warning("nats error", error=str(e))

        # Reconnects without bound: an outage of NATS of any length must end with this orchestrator
        # back on it by itself. nats-py's bounded attempts close the connection for good instead.
        attempts = RECONNECT_BOUND if "reconnect-gives-up" in self.bugs else -1
        self.nc = await nats.connect(
            self.servers,
            allow_reconnect=True,
            max_reconnect_attempts=attempts,
            reconnect_time_wait=0.25,
            connect_timeout=1,
            ping_interval=2,
            max_outstanding_pings=2,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
            error_cb=error,
        )

    async def ensure_stream(self) -> None:
        assert self.nc is not None
        js = self.nc.jetstream(timeout=2)
        s = self.stream
        cfg = StreamConfig(
            name=s.name,
            subjects=list(s.subjects),
            storage=StorageType.FILE,
            max_msgs=s.max_msgs,
            max_bytes=s.max_bytes,
            max_age=s.max_age_s,
            duplicate_window=s.duplicate_window_s,
            discard=DiscardPolicy.OLD,
            num_replicas=s.replicas,
        )
        try:
            info = await js.stream_info(s.name)
        except nats.js.errors.NotFoundError:
            info = await js.add_stream(cfg)
        # An existing stream is taken as it is: its operator's limits and duplicate window are the
        # ones that count, and the window is read again before every decision that depends on it.
        actual = info.config.duplicate_window
        if actual is not None and abs(actual - s.duplicate_window_s) > 0.001:
            self.log.warning(
                "the stream's duplicate window is not the configured one; using the stream's",
                stream=s.name,
                duplicate_window_s=actual,
                configured_s=s.duplicate_window_s,
            )
        self.stream_ready = True

    async def publish(self, d: dict[str, Any], received: float | None = None) -> tuple[int, bool]:
        """(seq, duplicate). Raises Unavailable when NATS cannot take it now. `received`: when the
        decision arrived (time.monotonic()), from which its age is counted; now when not given."""
        received = time.monotonic() if received is None else received
        if self.nc is None or not self.nc.is_connected:
            raise Unavailable("not connected to NATS")
        try:
            if not self.stream_ready:
                await self.ensure_stream()
            js = self.nc.jetstream(timeout=self.publish_timeout)
            if self._replay(d) and "no-window-lookup" not in self.bugs:
                # The window in force now, from the stream itself: an operator may have changed it
                # since this orchestrator started, and trusting the setting would skip the lookup.
                asked = time.monotonic()
                info = await self.nc.jetstream(timeout=2).stream_info(self.stream.name)
                first = self.first_attempt(d, time.monotonic() - received)
                if (
                    first is None
                    or self._lands_at(asked) - first >= (info.config.duplicate_window or 0.0) * WINDOW_MARGIN
                ):
                    self.on_lookup()
                    self.log.info("window lookup", cid=d["cid"], attempt=d.get("attempt"))
                    seq = await self.find(d["cid"], 0.0 if first is None else first, info)  # none: all of it
                    self.log.info("window lookup done", cid=d["cid"], found_seq=seq)
                    if seq is not None:
                        return seq, True
            body = {k: d.get(k) for k in ("cid", "key", "value", "proposer", "decided_at")}
            headers = {"Nats-Msg-Id": d["cid"], CID_HEADER: d["cid"]}
            if "no-dedup-header" in self.bugs:
                del headers["Nats-Msg-Id"]
            ack = await js.publish(
                SUBJECT,
                json.dumps(body, separators=(",", ":")).encode(),
                stream=self.stream.name,
                headers=headers,
            )
            self.stream_ready = True
            return ack.seq, bool(ack.duplicate)
        except (nats.js.errors.NotFoundError, nats.js.errors.NoStreamResponseError) as e:
            # The stream is gone (deleted, or a server that lost it): found or made again by the
            # next publish, and /healthz says so meanwhile.
            self.stream_ready = False
            raise Unavailable(f"{type(e).__name__}: {e}") from e
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError) as e:
            raise Unavailable(f"{type(e).__name__}: {e}") from e

    @staticmethod
    def _replay(d: dict[str, Any]) -> bool:
        try:
            return int(d.get("attempt", 1)) > 1
        except (TypeError, ValueError):
            return True  # cannot tell: treat it as a replay

    def _lands_at(self, asked: float) -> float:
        """The latest a publish sent now lands in the stream (Unix s), for the window's test: later by
        the PubAck's wait, or by the round trip to NATS just measured (from `asked`, monotonic) when
        the link is slower than that. Without it, a replay judged inside the window lands after it
        when the link to NATS is slow, and is stored twice (found by slow-stream-window)."""
        if "window-age-at-send" in self.bugs:
            return time.time()
        return time.time() + max(self.publish_timeout, time.monotonic() - asked)

    def first_attempt(self, d: dict[str, Any], waited: float = 0.0) -> float | None:
        """When the decision was first tried, on this host's clock (NATS's), or None when it cannot tell.
        From the agent's `first_attempt_age_s` (measured on the agent's clock alone), not its
        `first_attempt_at`: an agent whose clock runs ahead of NATS's by more than the lookup's slack
        would be judged inside the window, or scanned from after its message (agent-clock-skew)."""
        if "window-age-at-send" in self.bugs:
            waited = 0.0
        try:
            if "first_attempt_age_s" in d and "trust-agent-clock" not in self.bugs:
                # the age was measured when the agent sent it; `waited` s have passed since it arrived
                return time.time() - waited - max(0.0, float(d["first_attempt_age_s"]))
            return float(d["first_attempt_at"])  # an agent that does not send the age
        except (KeyError, TypeError, ValueError):
            return None

    async def find(self, cid: str, since: float, info: StreamInfo) -> int | None:
        """The seq of the stream message carrying `cid`, looking from `since` (Unix s) in the
        stream `info` describes. A headers-only scan by a consumer of its own: the stream itself
        says whether a publish landed.

        Not an ordered consumer: nats-py (2.16) resets one that missed a heartbeat or a message by
        re-creating it from a start sequence while keeping our start time, which the server refuses
        (both set), so the scan went quiet and the old consumer said nothing was pending: "absent",
        and the intent was stored twice (lookup-stall, with NATS paused mid-scan). Here every message
        must come in the consumer's own order, and "absent" needs the consumer to say it has
        delivered exactly what this scan read and has nothing left."""
        assert self.nc is not None
        js = self.nc.jetstream(timeout=2)
        last = info.state.last_seq
        if info.state.messages == 0:
            return None
        start = datetime.fromtimestamp(max(0.0, since - CLOCK_SLACK_S), tz=UTC)
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start.isoformat().replace("+00:00", "Z"),
            ack_policy=AckPolicy.NONE,
            headers_only=True,
            inactive_threshold=10,
            # delivered in windows the client must have read, as an ordered consumer is: a scan
            # reads the stream, not a copy the server pushed into this process ahead of it
            flow_control=True,
            idle_heartbeat=5,
        )
        sub = await js.subscribe(SUBJECT, stream=self.stream.name, config=cfg)
        read = 0  # messages this scan read, in the consumer's sequence
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=1)
                except nats.errors.TimeoutError:
                    # A quiet second means nothing more was stored since `since`, or a server that
                    # stalled mid-scan: only the consumer can tell. Taking a stall for "not in the
                    # stream" would publish the intent a second time past the duplicate window.
                    if "stall-is-absent" in self.bugs:
                        return None
                    try:
                        ci = await sub.consumer_info()
                    except (nats.errors.Error, TimeoutError) as e:
                        raise Unavailable(f"the lookup of {cid} stalled: {type(e).__name__}") from e
                    delivered = ci.delivered.consumer_seq or 0
                    if ci.num_pending == 0 and delivered == read:
                        return None
                    raise Unavailable(
                        f"the lookup of {cid} stalled: read {read} of {delivered} delivered, "
                        f"{ci.num_pending} more unread"
                    ) from None
                read += 1
                if msg.metadata.sequence.consumer != read:  # one lost on the way: cannot tell
                    raise Unavailable(
                        f"the lookup of {cid} missed messages: consumer seq "
                        f"{msg.metadata.sequence.consumer} after {read - 1}"
                    )
                if msg.headers and msg.headers.get(CID_HEADER) == cid:
                    return msg.metadata.sequence.stream
                if msg.metadata.sequence.stream >= last:
                    return None
        finally:
            await sub.unsubscribe()

    async def publish_telemetry(self, summary: dict[str, Any]) -> None:
        if self.nc is None or not self.nc.is_connected:
            raise Unavailable("not connected to NATS")
        await self.nc.publish(SUMMARY_SUBJECT, json.dumps(summary, separators=(",", ":")).encode())

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()


class Orchestrator:
    def __init__(self, settings: OrchestratorSettings, log: Log | None = None) -> None:
        self.s = settings
        self.log = log or Log(settings.name)
        self.node = Node(settings.identity_seed, settings.listen)
        self.bridge = AsyncioBridge()
        self.committer = Committer(
            settings.nats_servers, settings.stream, settings.publish_timeout, self.log, settings.bugs
        )
        buggify.announce(settings.bugs, "orchestrator", self.log)
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        self.m_decisions = Counter(
            "netsync_decisions", "Decisions received, by answer", ["status"], registry=r
        )
        self.m_publish = Histogram("netsync_publish_seconds", "Time to a PubAck", registry=r)
        self.m_nats = Gauge("netsync_nats_reachable", "Connected to NATS", registry=r)
        self.scout = Scout(settings.telemetry_interval)
        self.m_lookups = Counter("netsync_window_lookups", "Replays looked up in the stream", registry=r)
        self.committer.on_lookup = self.m_lookups.inc  # prometheus counters are thread-safe

    async def _emit_summary(self, summary: dict[str, Any]) -> None:
        await self.bridge.call(self.committer.publish_telemetry(summary))

    async def on_decision(self, d: dict[str, Any]) -> dict[str, Any]:
        cid = str(d.get("cid"))
        if d.get("type") == "ping":
            return {"type": "pong"}
        if d.get("type") != "decision" or not d.get("cid") or "key" not in d or "value" not in d:
            return {
                "cid": cid,
                "status": "invalid",
                "error": "expected a decision frame with cid, key, value",
            }
        if not valid_cid(d["cid"]):  # it becomes a NATS header: no newline may reach one
            return {"cid": cid, "status": "invalid", "error": f"cid must be {CID_RULE}"}
        t0 = time.monotonic()
        try:
            seq, dup = await self.bridge.call(self.committer.publish(d, t0))
        except Unavailable as e:
            self.m_decisions.labels("nats-unavailable").inc()
            self.m_nats.set(0)
            self.log.warning("nats-unavailable", cid=cid, error=str(e), attempt=d.get("attempt"))
            return {"cid": cid, "status": "nats-unavailable", "error": str(e)}
        self.m_publish.observe(time.monotonic() - t0)
        self.m_decisions.labels("committed").inc()
        self.m_nats.set(1)
        self.log.info("committed", cid=cid, stream_seq=seq, duplicate=dup, attempt=d.get("attempt"))
        return {"cid": cid, "status": "committed", "seq": seq, "duplicate": dup}

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        elif scope["path"] == "/healthz":
            await respond_json(
                send, 200, {"name": self.s.name, "peer_id": self.node.peer_id, "nats": self.committer.ready}
            )
        elif scope["path"] == "/metrics":
            await respond(send, 200, generate_latest(self.registry), "text/plain; version=0.0.4")
        else:
            await respond_json(send, 404, {"error": f"no route {scope['path']}"})

    async def _connect_nats(self) -> None:
        delay = 0.25
        while True:
            try:
                if self.committer.nc is None:
                    await self.bridge.call(self.committer.connect())
                await self.bridge.call(self.committer.ensure_stream())
                self.m_nats.set(1)
                self.log.info("stream ready", stream=self.s.stream.name)
                return
            except Exception as e:  # keep serving libp2p ("nats-unavailable") meanwhile
                self.log.warning("nats not ready", error=f"{type(e).__name__}: {e}")
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def run(self) -> None:
        self.node.handle(DECISION, self.on_decision)
        try:
            async with self.node.running(), pubsub(self.node.host) as ps, trio.open_nursery() as nursery:
                stop = trio.Event()
                nursery.start_soon(self._signals, stop)
                nursery.start_soon(self._connect_nats)
                nursery.start_soon(self.scout.collect, ps)
                nursery.start_soon(self.scout.summarise, self._emit_summary)
                self.log.info(
                    "orchestrator up", peer_id=self.node.peer_id, nats=",".join(self.s.nats_servers)
                )
                await serve_trio(self.app, self.s.http_port, self.log, stop.wait)
                nursery.cancel_scope.cancel()
        finally:
            try:
                with trio.move_on_after(2):
                    await self.bridge.call(self.committer.close())
            finally:
                self.bridge.close()

    async def _signals(self, stop: trio.Event) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                stop.set()
                return


def main() -> int:
    trio.run(Orchestrator(OrchestratorSettings.from_env()).run)
    return 0
