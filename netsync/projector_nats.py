"""The projector's side of NATS (docs/contract.md, "Projector"): one connection that reconnects on
its own, the durable pull consumer set up on the stream (made when missing, set up again when the
stream or consumer is gone), and handing back what it will not finish. A part of Projector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import nats
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from netsync.logs import Log
from netsync.projector_http import Metrics
from netsync.settings import ProjectorSettings

SUBJECT = "root.solar.command.sentiment.set"
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 2.0


class StreamSide:
    """Projector's methods that talk to NATS about the connection and the consumer."""

    s: ProjectorSettings
    log: Log
    metrics: Metrics
    stopping: asyncio.Event
    ack_wait: float
    nc: Any
    js: Any
    consuming: bool  # what /healthz says of NATS: the consumer bound on the stream, as last seen
    _confirming: asyncio.Task[None] | None

    async def _pause(self, seconds: float) -> None:
        raise NotImplementedError

    async def _connect_nats(self) -> None:
        async def on_error(e: Exception) -> None:
            self.log.warning("nats error", error=repr(e))

        async def on_disconnected() -> None:
            self.consuming = False
            self.metrics.nats_connected.set(0)
            self.log.warning("nats disconnected")

        async def on_reconnected() -> None:
            self.metrics.nats_connected.set(1)
            self.log.info("nats reconnected", url=str(self.nc.connected_url.geturl()) if self.nc else None)
            if self._confirming is None or self._confirming.done():
                self._confirming = asyncio.create_task(self._confirm_consumer())

        delay = BACKOFF_FIRST
        while not self.stopping.is_set():
            try:
                self.nc = await nats.connect(
                    list(self.s.nats_servers),
                    name=self.s.name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                )
                self.js = self.nc.jetstream(timeout=5)
                self.metrics.nats_connected.set(1)
                self.log.info(
                    "nats connected",
                    url=str(self.nc.connected_url.geturl()) if self.nc.connected_url else None,
                )
                return
            except Exception as e:
                self.log.warning("nats connect failed, retrying", error=repr(e), retry_in=delay)
                await self._pause(delay)
                delay = min(delay * 2, BACKOFF_CAP)

    async def _confirm_consumer(self) -> None:
        """After a reconnect, look the consumer up once, so that /healthz says it is in place while no
        message arrives to show it; retried while connected, as JetStream may still be starting. Gone:
        left to the fetch loop, which sets it up again."""
        delay = BACKOFF_FIRST
        while self.nc is not None and self.nc.is_connected and not self.stopping.is_set():
            try:
                await self.js.consumer_info(self.s.stream, self.s.consumer)
                self.consuming = True
                return
            except nats.js.errors.NotFoundError:
                return
            except Exception as e:
                self.log.warning("consumer not confirmed after a reconnect", error=repr(e), retry_in=delay)
                await self._pause(delay)
                delay = min(delay * 2, BACKOFF_CAP)

    async def _subscribe(self) -> Any:
        """Wait for the stream (the orchestrator creates it), ensure the durable consumer,
        and bind a pull subscription to it."""
        self.consuming = False
        delay = BACKOFF_FIRST
        waiting_logged = False
        while not self.stopping.is_set():
            try:
                await self.js.stream_info(self.s.stream)
                try:
                    info = await self.js.consumer_info(self.s.stream, self.s.consumer)
                    if info.config.ack_wait is not None and abs(info.config.ack_wait - self.ack_wait) > 0.001:
                        self.log.warning(
                            "existing consumer has a different ack_wait",
                            consumer=self.s.consumer,
                            ack_wait=info.config.ack_wait,
                        )
                except nats.js.errors.NotFoundError:
                    config = api.ConsumerConfig(
                        name=self.s.consumer,
                        durable_name=self.s.consumer,
                        deliver_policy=api.DeliverPolicy.ALL,
                        ack_policy=api.AckPolicy.EXPLICIT,
                        ack_wait=self.ack_wait,
                        filter_subject=SUBJECT,
                    )
                    await self.js.add_consumer(self.s.stream, config=config)
                    self.log.info("consumer created", stream=self.s.stream, consumer=self.s.consumer)
                sub = await self.js.pull_subscribe_bind(durable=self.s.consumer, stream=self.s.stream)
                self.consuming = True
                self.log.info("consuming", stream=self.s.stream, consumer=self.s.consumer)
                return sub
            except nats.js.errors.NotFoundError:
                if not waiting_logged:
                    self.log.info("waiting for the stream", stream=self.s.stream)
                    waiting_logged = True
            except Exception as e:
                self.log.warning("consumer setup failed, retrying", error=repr(e), retry_in=delay)
            await self._pause(delay)
            delay = min(delay * 2, BACKOFF_CAP)
        return None

    async def _consumer_gone(self) -> bool:
        try:
            await self.js.consumer_info(self.s.stream, self.s.consumer)
        except nats.js.errors.NotFoundError:
            return True
        except Exception:
            return False  # NATS itself is away: keep retrying the fetch
        return False

    async def _unsubscribe(self, sub: Any) -> None:
        try:
            await sub.unsubscribe()
        except Exception:
            pass

    async def _nak(self, msgs: Sequence[Msg]) -> None:
        """Hand back messages we hold but will not finish, for prompt redelivery."""
        if msgs:
            self.log.info("handed back unfinished messages", seqs=[m.metadata.sequence.stream for m in msgs])
        for m in msgs:
            try:
                await m.nak()
            except Exception:
                pass
