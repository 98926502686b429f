"""The nemesis's own thread and event loop (Jepsen's nemesis is a process of its own for the same reason):
a fault due at t is started by a loop that has nothing else to do, not behind the load's sends, the
sampler's rounds and the progress line on the harness's loop. What remains between a fault and its time
is the GIL (released by the other thread at least every `sys.getswitchinterval()`, 5 ms) and the
machine's cores.

`await own.run(coro)` runs a coroutine there and waits for it from the caller's loop. Cancelled, it
cancels the coroutine there and waits until it has finished, so that whatever it was applying is done
before the caller goes on (the runner heals next)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from harness.nemesis import on_time

T = TypeVar("T")


def _settle(finished: concurrent.futures.Future[Any], task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        finished.cancel()
    elif (error := task.exception()) is not None:
        finished.set_exception(error)
    else:
        finished.set_result(task.result())


class OwnLoop:
    """The thread asks for real-time priority first (on_time.realtime); `refused` says why it did not get
    it, None when it did."""

    def __init__(self, name: str = "nemesis") -> None:
        self.loop = asyncio.new_event_loop()
        self.refused: str | None = None
        ready = threading.Event()

        def main() -> None:
            self.refused = on_time.realtime()
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=main, name=name, daemon=True)
        self._thread.start()
        ready.wait()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        started: concurrent.futures.Future[asyncio.Task[T]] = concurrent.futures.Future()
        finished: concurrent.futures.Future[T] = concurrent.futures.Future()

        def begin() -> None:
            task = self.loop.create_task(coro)
            task.add_done_callback(lambda t: _settle(finished, t))
            started.set_result(task)

        self.loop.call_soon_threadsafe(begin)
        task = started.result() if started.done() else await asyncio.wrap_future(started)
        try:
            return await asyncio.shield(asyncio.wrap_future(finished))
        except asyncio.CancelledError:
            self.loop.call_soon_threadsafe(task.cancel)
            with contextlib.suppress(BaseException):  # its outcome is the cancellation's consequence
                await asyncio.wrap_future(finished)
            raise

    def close(self) -> None:
        """Cancel what still runs there (a kill's engine wait after a lost engine), stop the loop and the
        thread. Twice is harmless."""
        if self.loop.is_closed():
            return

        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            await self.loop.shutdown_default_executor()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self.loop.close()
