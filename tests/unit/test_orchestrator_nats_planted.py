"""Two promises of the orchestrator's NATS side (docs/contract.md): it reconnects to NATS without
bound (the planted `reconnect-gives-up` bounds it; scenarios/nats-long-outage.yaml runs it on NATS),
and a stream lookup that stops answering is "cannot tell", never "not in the stream". nats-py is a
stand-in here."""

from __future__ import annotations

from typing import Any

import nats.errors
import pytest

from netsync import orchestrator
from netsync.logs import Log
from netsync.orchestrator import Committer, Unavailable
from netsync.settings import StreamSettings


def committer(bugs: frozenset[str] = frozenset()) -> Committer:
    return Committer("nats://x", StreamSettings(), 0.3, Log("orchestrator"), bugs)


async def reconnect_attempts(monkeypatch, c: Committer) -> int:
    asked: dict[str, Any] = {}

    async def connect(servers: Any, **kw: Any) -> object:
        asked.update(kw)
        return object()

    monkeypatch.setattr(orchestrator.nats, "connect", connect)
    await c.connect()
    assert asked["allow_reconnect"] is True
    return asked["max_reconnect_attempts"]


async def test_the_orchestrator_reconnects_to_nats_without_bound(monkeypatch) -> None:
    assert await reconnect_attempts(monkeypatch, committer()) == -1  # nats-py: never give up


async def test_reconnect_gives_up_bounds_it_to_about_15_s_of_refused_attempts(monkeypatch) -> None:
    attempts = await reconnect_attempts(monkeypatch, committer(frozenset({"reconnect-gives-up"})))
    assert attempts == 60  # 0.25 s apart: nats-py closes the connection for good after about 15 s


class StalledScan:
    """An ordered consumer's subscription on a server that stopped answering: no message comes,
    and the consumer's info does not either."""

    def __init__(self, info_error: Exception | None, pending: int = 0, delivered: int = 0) -> None:
        self.info_error = info_error
        self.pending = pending
        self.delivered = delivered  # messages the consumer says it delivered (none reach the scan)
        self.unsubscribed = False

    async def next_msg(self, timeout: float) -> Any:
        raise nats.errors.TimeoutError

    async def consumer_info(self) -> Any:
        if self.info_error is not None:
            raise self.info_error

        class Delivered:
            consumer_seq = self.delivered

        class Info:
            num_pending = self.pending
            delivered = Delivered()

        return Info()

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


class JS:
    def __init__(self, sub: StalledScan) -> None:
        self.sub = sub

    async def subscribe(self, subject: str, **kw: Any) -> StalledScan:
        return self.sub


class NC:
    is_connected = True

    def __init__(self, sub: StalledScan) -> None:
        self.js = JS(sub)

    def jetstream(self, timeout: float = 5) -> JS:
        return self.js


class StreamInfo:
    class state:  # noqa: N801 - nats-py's StreamInfo.state
        last_seq, messages = 40, 40


async def find(c: Committer, sub: StalledScan) -> int | None:
    c.nc = NC(sub)  # type: ignore[assignment]
    return await c.find("c1", 1_000.0, StreamInfo())  # type: ignore[arg-type]


STALLS = [nats.errors.TimeoutError(), TimeoutError(), nats.errors.NoRespondersError()]


@pytest.mark.parametrize("error", STALLS)
async def test_a_lookup_that_stops_answering_is_unavailable_not_absent(error: Exception) -> None:
    sub = StalledScan(info_error=error)
    with pytest.raises(Unavailable, match="the lookup of c1 stalled"):
        await find(committer(), sub)
    assert sub.unsubscribed


async def test_a_quiet_scan_with_messages_unread_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="stalled: read 0 of 0 delivered, 3 more unread"):
        await find(committer(), StalledScan(info_error=None, pending=3))


async def test_a_quiet_scan_that_read_less_than_was_delivered_is_unavailable() -> None:
    """Nothing pending on the server, but two messages it delivered never reached the scan (lost in
    a consumer's reset, or still on their way): "absent" would be a guess."""
    with pytest.raises(Unavailable, match="read 0 of 2 delivered"):
        await find(committer(), StalledScan(info_error=None, pending=0, delivered=2))


async def test_a_quiet_scan_with_nothing_unread_is_absent() -> None:
    assert await find(committer(), StalledScan(info_error=None, pending=0)) is None
