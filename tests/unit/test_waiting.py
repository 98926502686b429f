"""harness.waiting: a probe's ordinary failure is retried until the deadline; a Hopeless one
(say, a /healthz field the contract requires is missing) ends the wait at once."""

from __future__ import annotations

import time

import pytest

from harness.waiting import Hopeless, WaitTimeout, await_until, wait_until


def test_an_ordinary_failure_is_retried_until_it_passes() -> None:
    calls = []

    def probe() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return True

    assert wait_until(probe, "the thing", timeout=5, interval=0.01) is True
    assert len(calls) == 3


def test_a_hopeless_failure_ends_the_wait_at_once() -> None:
    def probe() -> bool:
        raise Hopeless("agent-1's /healthz has no peers_connected")

    t0 = time.monotonic()
    with pytest.raises(Hopeless, match="peers_connected"):
        wait_until(probe, "the thing", timeout=30)
    assert time.monotonic() - t0 < 5


async def test_the_async_wait_does_the_same() -> None:
    async def hopeless() -> bool:
        raise Hopeless("no field")

    async def never() -> bool:
        return False

    with pytest.raises(Hopeless):
        await await_until(hopeless, "the thing", timeout=30)
    with pytest.raises(WaitTimeout, match="the thing; last seen: False"):
        await await_until(never, "the thing", timeout=0.1, interval=0.01)
