"""Link faults, all through Toxiproxy: partition and isolate (refuse: proxy disabled; blackhole: bytes
vanish) and the toxics latency, bandwidth, slow_close, reset_peer, slicer and limit_data."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from harness.errors import TopologyError
from harness.scenario import (
    BandwidthFault,
    BaseFault,
    IsolateFault,
    LatencyFault,
    LimitDataFault,
    PartitionFault,
    ResetPeerFault,
    SlicerFault,
    SlowCloseFault,
    select_links,
)
from harness.toxiproxy import Stream, Toxic, Toxiproxy, ToxiproxyError

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls

STREAMS: tuple[Stream, ...] = ("upstream", "downstream")
T = TypeVar("T")


class ProxyControl:
    """The nemesis's hands on Toxiproxy, through one long-lived client (`aclose` ends it; the next call opens
    another). A proxy disabled by several faults at once stays disabled until the last of them stops, so
    overlapping faults heal independently."""

    def __init__(self, url: Callable[[], str]) -> None:
        self._url_of = url
        self._url: str | None = None
        self._client: Toxiproxy | None = None
        self._disabled: Counter[str] = Counter()
        # Enabling and disabling one proxy must reach Toxiproxy in the order its count changed; other
        # proxies go on meanwhile. A reset holds them all.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def _tp(self) -> Toxiproxy:
        if self._client is None:
            if self._url is None:
                # The URL asks the engine for a published port: blocking, and stable (Toxiproxy is never
                # faulted).
                self._url = await asyncio.to_thread(self._url_of)
            if self._client is None:  # another call may have made it meanwhile
                self._client = Toxiproxy(self._url)
        return self._client

    async def _call(self, op: Callable[[Toxiproxy], Awaitable[T]]) -> T:
        return await op(await self._tp())

    async def prepare(self) -> None:
        """The client made and its connection opened, before the first fault needs them."""
        await self._call(lambda tp: tp.proxies())

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def disable(self, link: str) -> None:
        async with self._locks[link]:
            if self._disabled[link] == 0:
                await self._call(lambda tp: tp.set_enabled(link, False))
            self._disabled[link] += 1

    async def enable(self, link: str) -> None:
        async with self._locks[link]:
            if self._disabled[link] == 1:
                await self._call(lambda tp: tp.set_enabled(link, True))
            self._disabled[link] = max(0, self._disabled[link] - 1)

    async def add_toxic(self, link: str, toxic: Toxic) -> None:
        await self._call(lambda tp: tp.add_toxic(link, toxic))

    async def remove_toxic(self, link: str, name: str) -> None:
        try:
            await self._call(lambda tp: tp.remove_toxic(link, name))
        except ToxiproxyError:
            # Already gone (a reset, or a stop repeated) is healed; a toxic still there is a real failure.
            proxies = await self._call(lambda tp: tp.proxies())
            if any(t.name == name for t in proxies[link].toxics):
                raise

    async def reset(self) -> None:
        """Every proxy enabled, every toxic removed, whoever made them."""
        async with contextlib.AsyncExitStack() as held:
            for link in sorted(self._locks):  # one order, so two resets cannot deadlock
                await held.enter_async_context(self._locks[link])
            await self._call(lambda tp: tp.reset())
            self._disabled.clear()


async def _each(items: list[T], act: Callable[[T], Awaitable[None]], done: list[T]) -> None:
    """`act` on every item at once; `done` gets those it succeeded on (in `items` order), then the first
    failure is raised."""
    results = await asyncio.gather(*(act(item) for item in items), return_exceptions=True)
    done.extend(item for item, r in zip(items, results, strict=True) if r is None)
    if errors := [r for r in results if isinstance(r, BaseException)]:
        raise errors[0]


async def _undo(done: list[T], act: Callable[[T], Awaitable[None]]) -> None:
    """`act` on every item of `done` at once; those it succeeded on leave `done`, then the first failure is
    raised (what is left is tried again by the next stop)."""
    undone: list[T] = []
    try:
        await _each(list(done), act, undone)
    finally:
        for item in undone:
            done.remove(item)


@dataclass
class Disabled:
    """`refuse`: the links' proxies disabled, so connecting is refused at once and open connections drop."""

    proxies: ProxyControl
    links: list[str]
    target: dict[str, Any]
    _done: list[str] = field(default_factory=list)

    async def start(self) -> None:
        await _each(self.links, self.proxies.disable, self._done)

    async def stop(self) -> None:
        await _undo(self._done, self.proxies.enable)


@dataclass
class Toxics:
    """One toxic on both streams of every link, named after the fault so overlapping faults on a link
    come off independently."""

    proxies: ProxyControl
    links: list[str]
    fault_id: str
    type: str
    attributes: dict[str, Any]
    target: dict[str, Any]
    streams: tuple[Stream, ...] = STREAMS
    _done: list[tuple[str, str]] = field(default_factory=list)

    async def start(self) -> None:
        parts = [(link, stream) for link in self.links for stream in self.streams]

        async def add(part: tuple[str, Stream]) -> None:
            link, stream = part
            await self.proxies.add_toxic(
                link, Toxic(self._name(stream), self.type, stream, 1.0, self.attributes)
            )

        added: list[tuple[str, Stream]] = []
        try:
            await _each(parts, add, added)
        finally:
            self._done.extend((link, self._name(stream)) for link, stream in added)

    async def stop(self) -> None:
        await _undo(self._done, lambda part: self.proxies.remove_toxic(*part))

    def _name(self, stream: str) -> str:
        return f"{self.fault_id}-{stream}"


# A link's request bytes flow upstream (source to target), its responses downstream.
DIRECTIONS: dict[str, tuple[Stream, ...]] = {
    "both": STREAMS,
    "request": ("upstream",),
    "response": ("downstream",),
}


def cut(
    ctl: Controls, links: list[str], mode: str, fault_id: str, target: dict[str, Any], direction: str = "both"
) -> ActiveFault:
    """Refuse or blackhole `links`; `target` is completed with the mode and the links cut."""
    target = {**target, "mode": mode, "links": links}
    if mode == "refuse":
        return Disabled(ctl.proxies, links, target)
    if direction != "both":
        target["direction"] = direction
    # Toxiproxy's timeout toxic with timeout 0 drops every byte and keeps the connection open.
    return Toxics(ctl.proxies, links, fault_id, "timeout", {"timeout": 0}, target, DIRECTIONS[direction])


def known(ctl: Controls, pairs: list[tuple[str, str]]) -> list[str]:
    names = list(dict.fromkeys(f"{a}>{b}" for a, b in pairs))
    if missing := [name for name in names if name not in ctl.links]:
        # The scenario was checked against its topology; this system must have been built from another.
        raise TopologyError(f"the system has no link {', '.join(missing)}; it has {', '.join(ctl.links)}")
    return names


def _selected(ctl: Controls, selectors: list[str]) -> list[str]:
    cfg = ctl.sut.cfg
    return known(
        ctl, [pair for s in selectors for pair in select_links(s, ctl.agents, cfg.nats_nodes, cfg.analytics)]
    )


def partition(ctl: Controls, fault: PartitionFault, fault_id: str) -> ActiveFault:
    if fault.links is not None:
        return cut(ctl, _selected(ctl, fault.links), fault.mode, fault_id, {}, fault.direction)
    group_of = {node: i for i, group in enumerate(fault.groups or []) for node in group}
    # A node in no group keeps every link; two nodes of one group keep theirs.
    pairs = [
        (ln.source, ln.target)
        for ln in ctl.links.values()
        if ln.source in group_of and ln.target in group_of and group_of[ln.source] != group_of[ln.target]
    ]
    return cut(ctl, known(ctl, pairs), fault.mode, fault_id, {"groups": fault.groups}, fault.direction)


def isolate(ctl: Controls, fault: IsolateFault, fault_id: str) -> ActiveFault:
    pairs = [(ln.source, ln.target) for ln in ctl.links.values() if fault.target in (ln.source, ln.target)]
    return cut(ctl, known(ctl, pairs), fault.mode, fault_id, {"node": fault.target})


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# Each toxic fault as (Toxiproxy type, its attributes, what the history records beside the links).
ToxicSpec = tuple[str, dict[str, Any], dict[str, Any]]


def _latency(f: LatencyFault) -> ToxicSpec:
    ms = {"latency": _ms(f.latency), "jitter": _ms(f.jitter)}
    return "latency", ms, {"latency_ms": ms["latency"], "jitter_ms": ms["jitter"]}


def _bandwidth(f: BandwidthFault) -> ToxicSpec:
    return "bandwidth", {"rate": f.rate_kbps}, {"rate_kbps": f.rate_kbps}


def _slow_close(f: SlowCloseFault) -> ToxicSpec:
    return "slow_close", {"delay": _ms(f.delay)}, {"delay_ms": _ms(f.delay)}


def _reset_peer(f: ResetPeerFault) -> ToxicSpec:
    return "reset_peer", {"timeout": _ms(f.timeout)}, {"timeout_ms": _ms(f.timeout)}


def _slicer(f: SlicerFault) -> ToxicSpec:
    # Toxiproxy counts the slicer's delay in microseconds.
    sizes = {"average_size": f.average_size, "size_variation": f.size_variation}
    delay_us = round(f.delay * 1_000_000)
    return "slicer", {**sizes, "delay": delay_us}, {**sizes, "delay_us": delay_us}


def _limit_data(f: LimitDataFault) -> ToxicSpec:
    return "limit_data", {"bytes": f.bytes}, {"bytes": f.bytes}


TOXIC_SPECS: dict[str, Callable[[Any], ToxicSpec]] = {
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slow_close": _slow_close,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}


def toxic(ctl: Controls, fault: BaseFault, fault_id: str) -> ActiveFault:
    kind, attributes, shown = TOXIC_SPECS[fault.fault](fault)
    links = _selected(ctl, fault.links)  # type: ignore[attr-defined]  # every toxic fault is a _LinkFault
    return Toxics(ctl.proxies, links, fault_id, kind, attributes, {"links": links, **shown})


NEMESES: dict[str, Callable[[Controls, Any, str], ActiveFault]] = {
    "partition": partition,
    "isolate": isolate,
    **dict.fromkeys(TOXIC_SPECS, toxic),
}
