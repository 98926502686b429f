"""libp2p for netsync: a host with a seed-derived identity, request/answer calls with
deadlines over one long-lived stream per peer and protocol, and redial after a
failure. Peers are dialled only at the addresses they were configured with (proxy
addresses); mDNS and identify-learned addresses are off."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.network.config import RetryConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.rcmgr import new_resource_manager
from libp2p.rcmgr.connection_limits import ConnectionLimits, new_connection_limits_with_defaults

from netsync.wire import FrameReader, encode

SENTIMENT = TProtocol("/root-solar/sentiment/1.0.0")
DECISION = TProtocol("/root-solar/decision/1.0.0")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
RID = "rid"  # the request id a multiplexed stream's answers are matched by (docs/contract.md)


class PeerUnavailable(Exception):
    """The peer could not be reached or did not answer in time."""


class PeerTimeout(PeerUnavailable):
    """The peer did not answer in time; the connection is kept."""


def key_pair_for_seed(seed: str) -> KeyPair:
    """The contract's identity: Ed25519 whose 32-byte seed is sha256(seed)."""
    return create_new_key_pair(hashlib.sha256(seed.encode()).digest())


def peer_id_for_seed(seed: str) -> str:
    return ID.from_pubkey(key_pair_for_seed(seed).public_key).to_base58()


def _connection_limits() -> ConnectionLimits:
    """py-libp2p's defaults, without the per-peer cap of 8 established connections.
    Measured with py-libp2p 0.8.1: closed connections stay counted against it, so after
    a few drops and redials (faults healed, or overload) a peer was refused for good
    ("Established per peer limit exceeded: 8 >= 8"). netsync keeps one connection per
    peer itself, so the cap guards nothing here."""
    limits = new_connection_limits_with_defaults()
    limits.max_established_per_peer = None
    return limits


class _Outbox:
    """Frames queued for one stream, written by one task. Everything queued while the
    writer waits for its turn goes out in one write: one yamux frame, one noise
    encryption, one send() for a burst of requests or answers."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.frames: list[bytes] = []
        self.closing = False
        self._wake = trio.Event()

    def put(self, frame: bytes) -> None:
        self.frames.append(frame)
        self._wake.set()

    def close(self) -> None:
        """The pump returns once everything queued so far is written."""
        self.closing = True
        self._wake.set()

    async def pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self.frames:
                data, self.frames = b"".join(self.frames), []
                await self.stream.write(data)
            if self.closing and not self.frames:
                return


class _Reply:
    __slots__ = ("event", "answer", "error")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.answer: dict[str, Any] | None = None
        self.error: Exception | None = None


class _Channel:
    """The caller's end of one long-lived stream to a peer: requests carry a `rid`,
    answers come back in any order and are matched by it. One slow answer holds up
    nothing else, and no request pays a stream opening and protocol negotiation."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.outbox = _Outbox(stream)
        self.waiting: dict[int, _Reply] = {}
        self.next_rid = 0
        self.failure: Exception | None = None
        self.scope = trio.CancelScope()

    async def serve(self) -> None:
        """Write queued requests and read answers until the stream fails or is closed."""
        try:
            with self.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump)
                    reader = FrameReader(self.stream)
                    while True:
                        answer = await reader.next()
                        if answer is None:
                            raise EOFError("the peer closed the stream")
                        reply = self.waiting.pop(answer.pop(RID, None), None)
                        if reply is not None:  # else: its caller gave up already
                            reply.answer = answer
                            reply.event.set()
        except Exception as e:
            self.fail(e)
        finally:
            self.fail(EOFError("channel closed"))
            with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                try:
                    await self.stream.reset()
                except Exception:
                    pass

    async def _pump(self) -> None:
        try:
            await self.outbox.pump()
        except Exception as e:
            self.fail(e)  # which also ends serve()

    def fail(self, error: Exception) -> None:
        while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]  # name the cause, not trio's wrapping of it
        if self.failure is None:
            self.failure = error
        waiting, self.waiting = self.waiting, {}
        for reply in waiting.values():
            reply.error = self.failure
            reply.event.set()
        self.scope.cancel()

    async def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        self.next_rid += 1
        rid = self.next_rid
        reply = self.waiting[rid] = _Reply()
        try:
            self.outbox.put(encode({**payload, RID: rid}))
            await reply.event.wait()
        finally:
            self.waiting.pop(rid, None)
        if reply.error is not None:
            raise reply.error
        assert reply.answer is not None
        return reply.answer


class Node:
    def __init__(self, seed: str, listen: str) -> None:
        self.host = new_host(
            key_pair=key_pair_for_seed(seed),
            enable_mDNS=False,
            disable_identify_address_discovery=True,
            resource_manager=new_resource_manager(connection_limits=_connection_limits()),
        )
        network = self.host.get_network()
        # netsync owns its redial policy (keep_connected, request): one fast attempt
        # per dial, and no negative cache, or a healed link stays unused for seconds.
        network.retry_config = RetryConfig(max_retries=0)
        self.listen = multiaddr.Multiaddr(listen)
        self._dial_locks: dict[ID, trio.Lock] = {}
        self._channels: dict[tuple[ID, str], _Channel] = {}
        self._channel_locks: dict[tuple[ID, str], trio.Lock] = {}
        self._nursery: trio.Nursery | None = None
        self._last_ok: dict[ID, float] = {}  # when each peer last answered a request

    @property
    def peer_id(self) -> str:
        return self.host.get_id().to_base58()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        async with self.host.run(listen_addrs=[self.listen]), trio.open_nursery() as nursery:
            self._nursery = nursery
            yield self
            nursery.cancel_scope.cancel()

    def handle(self, protocol: TProtocol, handler: Handler) -> None:
        """Answer every request frame on each incoming stream of `protocol`, each in its
        own task, echoing its `rid`. A caller may send one request and close its side,
        or keep the stream and send many."""

        async def answer(outbox: _Outbox, request: dict[str, Any]) -> None:
            rid = request.pop(RID, None)
            try:
                result = await handler(request)
            except Exception as e:  # one failing request must not break the stream's others
                result = {"cid": request.get("cid"), "error": f"{type(e).__name__}: {e}"}
            outbox.put(encode(result if rid is None else {**result, RID: rid}))

        async def on_stream(stream: Any) -> None:
            outbox = _Outbox(stream)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(outbox.pump)
                    async with trio.open_nursery() as answering:
                        reader = FrameReader(stream)
                        while (request := await reader.next()) is not None:
                            answering.start_soon(answer, outbox, request)
                    outbox.close()  # the caller closed its side: send the last answers, then end
            except Exception:  # a bad peer, or a broken stream, must not take the node down
                try:
                    await stream.reset()
                except Exception:
                    pass
                return
            try:
                await stream.close()
            except Exception:
                pass

        self.host.set_stream_handler(protocol, on_stream)

    async def _ensure_connected(self, peer: PeerInfo) -> None:
        network = self.host.get_network()
        if network.connections.get(peer.peer_id):
            return
        lock = self._dial_locks.setdefault(peer.peer_id, trio.Lock())
        async with lock:  # one dial per peer at a time, not one per request
            if not network.connections.get(peer.peer_id):
                network.unblock_peer(peer.peer_id)
                # Dial only the configured (proxy) address. Identify fills the peerstore
                # with the addresses a peer reports for itself, such as 0.0.0.0:4001,
                # which would reach around the proxy, or dial ourselves.
                store = self.host.get_peerstore()
                store.clear_addrs(peer.peer_id)
                store.add_addrs(peer.peer_id, peer.addrs, 3600)
                await self.host.connect(peer)

    async def _channel(self, peer: PeerInfo, protocol: TProtocol) -> _Channel:
        key = (peer.peer_id, str(protocol))
        channel = self._channels.get(key)
        if channel is not None and channel.failure is None:
            return channel
        lock = self._channel_locks.setdefault(key, trio.Lock())
        async with lock:  # one stream per peer and protocol, not one per waiting request
            channel = self._channels.get(key)
            if channel is None or channel.failure is not None:
                await self._ensure_connected(peer)
                stream = await self.host.new_stream(peer.peer_id, [protocol])
                channel = self._channels[key] = _Channel(stream)
                assert self._nursery is not None, "Node.request needs Node.running()"
                self._nursery.start_soon(channel.serve)
            return channel

    async def request(
        self, peer: PeerInfo, protocol: TProtocol, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Send one request frame and wait for its answer, within `timeout`. A broken
        stream or connection is dropped, so the next call dials afresh."""
        try:
            with trio.fail_after(timeout):
                channel = await self._channel(peer, protocol)
                answer = await channel.call(payload)
                self._last_ok[peer.peer_id] = trio.current_time()
                return answer
        except trio.TooSlowError as e:
            # A late answer is not a dead connection: dropping it here would fail every
            # other request in flight on it and, under load, cascade into a collapse.
            # keep_connected's probe drops a connection that stays silent.
            raise PeerTimeout(f"{peer.peer_id} did not answer within {timeout * 1000:.0f} ms") from e
        except Exception as e:
            await self._drop(peer)
            raise PeerUnavailable(f"{peer.peer_id}: {type(e).__name__}: {e}") from e

    async def keep_connected(
        self,
        peers: list[PeerInfo],
        interval: float = 0.5,
        timeout: float = 2.0,
        warm_up: Callable[[PeerInfo], Awaitable[None]] | None = None,
    ) -> None:
        """Dial every peer that has no connection, forever: the first intent after a
        start or a heal should not pay the ~250 ms handshake inside its deadline.

        Redials are jittered per peer: two agents that lost each other at the same
        moment would otherwise dial each other in lockstep, and simultaneous dials
        fail each other's security handshake again and again."""
        rng = random.Random(self.peer_id)
        due = {peer.peer_id: 0.0 for peer in peers}
        probing: set[ID] = set()

        async def probe(peer: PeerInfo) -> None:
            """A connected peer silent for a while gets a ping; no answer in `timeout`
            (a blackholed link, a paused peer) drops the connection, so it is redialled."""
            try:
                with trio.move_on_after(timeout) as scope:
                    try:
                        if warm_up is not None:
                            await warm_up(peer)
                    except Exception:
                        scope.cancel()
                if scope.cancelled_caught:
                    await self._drop(peer)
            finally:
                probing.discard(peer.peer_id)

        async def dial(peer: PeerInfo) -> None:
            with trio.move_on_after(timeout):
                try:
                    await self._ensure_connected(peer)
                    if warm_up is not None:
                        # The first stream on a connection pays protocol negotiation;
                        # pay it here, not inside an intent's deadline.
                        await warm_up(peer)
                    return
                except Exception:
                    await self._drop(peer)
            due[peer.peer_id] = trio.current_time() + rng.uniform(0.5, 2.0) * interval

        async with trio.open_nursery() as probes:
            while True:
                connected = self.host.get_network().connections
                now = trio.current_time()
                async with trio.open_nursery() as dials:
                    for peer in peers:
                        if not connected.get(peer.peer_id):
                            if due[peer.peer_id] <= now:
                                due[peer.peer_id] = now + rng.uniform(0.5, 1.5) * interval
                                dials.start_soon(dial, peer)
                        elif (
                            warm_up is not None
                            and peer.peer_id not in probing
                            and now - self._last_ok.get(peer.peer_id, now) > 2 * interval
                        ):
                            probing.add(peer.peer_id)
                            probes.start_soon(probe, peer)
                await trio.sleep(rng.uniform(0.1, 0.3))

    async def _drop(self, peer: PeerInfo) -> None:
        for (peer_id, _), channel in list(self._channels.items()):
            if peer_id == peer.peer_id:
                channel.fail(EOFError("connection dropped"))
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            try:
                await self.host.disconnect(peer.peer_id)
            except Exception:
                pass

    def is_connected(self, peer: PeerInfo) -> bool:
        return bool(self.host.get_network().connections.get(peer.peer_id))


def peer_info(addr: str) -> PeerInfo:
    return info_from_p2p_addr(multiaddr.Multiaddr(addr))
