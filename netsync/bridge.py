"""The one seam between the two async worlds: py-libp2p runs on trio, nats-py on asyncio.

An asyncio event loop runs in its own thread; trio code awaits coroutines on it with
`await bridge.call(coro)`. No thread blocks while waiting: the asyncio future's
completion wakes the trio task through its trio token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class AsyncioBridge:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="asyncio-bridge", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the asyncio loop and await its result from trio.
        Cancelling the trio task cancels the coroutine."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: Any) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        fut.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            fut.cancel()
            raise
        return fut.result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
