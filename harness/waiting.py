"""Waiting on conditions with a deadline, never on a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


class WaitTimeout(HarnessError):
    pass


class Hopeless(HarnessError):
    """A failure no amount of waiting cures (a field the contract requires is missing, say):
    a probe raises it to end the wait at once."""


def wait_until(probe: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.05) -> T:
    """Call `probe` until it returns a truthy value or raises nothing; the error names
    what was awaited and the last thing seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            got = probe()
            if got:
                return got
            last = got
        except Hopeless:
            raise
        except Exception as e:  # the probe's failure is what we report if time runs out
            last = e
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:.1f} s for {what}; last seen: {last!r}")
        time.sleep(interval)


async def await_until(
    probe: Callable[[], Awaitable[T]], what: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            got = await probe()
            if got:
                return got
            last = got
        except Hopeless:
            raise
        except Exception as e:
            last = e
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"waited {timeout:.1f} s for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)
