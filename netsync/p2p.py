"""libp2p for netsync: a host with a seed-derived identity, one-request-per-stream
calls with deadlines, and redial after a failure. Peers are dialled only at the
addresses they were configured with (proxy addresses); mDNS and identify-learned
addresses are off."""

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

from netsync.wire import FrameError, read_frame, write_frame

SENTIMENT = TProtocol("/root-solar/sentiment/1.0.0")
DECISION = TProtocol("/root-solar/decision/1.0.0")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class PeerUnavailable(Exception):
    """The peer could not be reached or did not answer in time."""


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
        self._last_ok: dict[ID, float] = {}  # when each peer last answered a request

    @property
    def peer_id(self) -> str:
        return self.host.get_id().to_base58()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Node]:
        async with self.host.run(listen_addrs=[self.listen]):
            yield self

    def handle(self, protocol: TProtocol, handler: Handler) -> None:
        """Serve one request frame with one answer frame per stream."""

        async def on_stream(stream: Any) -> None:
            try:
                request = await read_frame(stream)
                answer = await handler(request)
                await write_frame(stream, answer)
            except (FrameError, Exception):  # a bad peer must not take the node down
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

    async def request(
        self, peer: PeerInfo, protocol: TProtocol, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Send one frame on a new stream and read one back, within `timeout`.
        On failure the connection is dropped so the next call dials afresh."""
        try:
            with trio.fail_after(timeout):
                await self._ensure_connected(peer)
                stream = await self.host.new_stream(peer.peer_id, [protocol])
                try:
                    await write_frame(stream, payload)
                    answer = await read_frame(stream)
                finally:
                    with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                        try:
                            await stream.close()
                        except Exception:
                            pass
                self._last_ok[peer.peer_id] = trio.current_time()
                return answer
        except trio.TooSlowError as e:
            # A late answer is not a dead connection: dropping it here would fail every
            # other request in flight on it and, under load, cascade into a collapse.
            # keep_connected's probe drops a connection that stays silent.
            raise PeerUnavailable(f"{peer.peer_id} did not answer within {timeout * 1000:.0f} ms") from e
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
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            try:
                await self.host.disconnect(peer.peer_id)
            except Exception:
                pass

    def is_connected(self, peer: PeerInfo) -> bool:
        return bool(self.host.get_network().connections.get(peer.peer_id))

    def connected_peers(self) -> set[str]:
        return {pid.to_base58() for pid, conns in self.host.get_network().connections.items() if conns}


def peer_info(addr: str) -> PeerInfo:
    return info_from_p2p_addr(multiaddr.Multiaddr(addr))
