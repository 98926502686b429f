"""The asyncio load client: POST /intents to one agent over a fixed set of keep-alive HTTP/1.1
connections (`harness.http1.exchange`), each driven by one worker taking requests from a queue, so a
request costs O(1) however many wait. httpx's pool rescans every connection it holds for each
request; after a stall had made it open hundreds, the client itself sent up to 1 s late
(bench/README.md, "netsync throughput")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.http1 import exchange

IDLE_S = 4.0  # a connection idle longer is dialled afresh: servers close idle keep-alives (hypercorn: 5 s)


@dataclass(frozen=True)
class Reply:
    """An agent's answer (`status`, `payload`), or the `error` that left none; `at` is the loop time."""

    status: int | None
    payload: bytes
    error: str | None
    at: float


OnSend = Callable[[str], None]  # called with the process (connection) at the moment it sends
OnReply = Callable[[str, Reply], None]


class IntentSender:
    """One agent's connections, one worker each, named by `processes` (Jepsen's processes: one request
    at a time each). A request that finds every connection busy waits in the queue: it is sent late,
    and `on_send` says when it went out."""

    def __init__(self, url: str, processes: Sequence[str], timeout: float) -> None:
        address = url.split("://", 1)[1].rstrip("/")
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self._host = self.host.encode()
        self.processes = list(processes)
        self.timeout = timeout
        self.queue: asyncio.Queue[tuple[bytes, OnSend, OnReply]] = asyncio.Queue()
        self.workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.workers = [asyncio.create_task(self._work(p)) for p in self.processes]

    def submit(self, body: bytes, on_send: OnSend, on_reply: OnReply) -> None:
        self.queue.put_nowait((body, on_send, on_reply))

    async def join(self) -> None:
        """Until every request submitted so far has its reply (each is bounded by the timeout)."""
        await self.queue.join()

    async def stop(self) -> None:
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)

    async def _work(self, process: str) -> None:
        loop = asyncio.get_running_loop()
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        last_used = 0.0
        try:
            while True:
                body, on_send, on_reply = await self.queue.get()
                try:
                    if conn is not None and (conn[0].at_eof() or loop.time() - last_used > IDLE_S):
                        conn[1].close()  # closed by the server, or soon to be: never send on it
                        conn = None
                    on_send(process)
                    try:
                        async with asyncio.timeout(self.timeout):
                            if conn is None:
                                conn = await asyncio.open_connection(self.host, self.port)
                            status, payload, keep = await exchange(
                                conn, b"POST", b"/intents", self._host, body
                            )
                        reply = Reply(status, payload, None, loop.time())
                        if not keep:
                            conn[1].close()
                            conn = None
                    except TimeoutError:
                        reply = Reply(
                            None, b"", f"TimeoutError: no answer within {self.timeout:g} s", loop.time()
                        )
                    except Exception as e:
                        # http1.ERRORS (refused, reset, an answer it cannot take: BrokenAnswer) or anything
                        # else: this operation's outcome is unknown, and the worker lives on. A worker that
                        # died left its agent's queue to the others, and with the last one gone the run
                        # waited in join() for ever.
                        reply = Reply(None, b"", f"{type(e).__name__}: {e}", loop.time())
                    if reply.status is None and conn is not None:  # its state is unknown now: start afresh
                        conn[1].close()
                        conn = None
                    last_used = loop.time()
                    on_reply(process, reply)
                finally:
                    self.queue.task_done()
        finally:
            if conn is not None:
                conn[1].close()
                with contextlib.suppress(Exception):
                    await conn[1].wait_closed()
