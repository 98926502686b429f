"""Container faults: crash (SIGKILL, later start and wait until ready) and pause (every process frozen,
later resumed), through the Docker engine; with a local engine the nemesis sends a kill to the container's
main process itself (see `ContainerControl._kill`) and freezes a paused one's cgroup itself
(`harness.nemesis.freezer`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker.errors
import requests

from harness.errors import TopologyError
from harness.nemesis.freezer import Freezer
from harness.scenario import CrashFault, PauseFault
from harness.shape import is_nats
from harness.topology.docker import is_main_process
from harness.topology.services import NATS, SURREALDB, Service
from harness.topology.system import System

if TYPE_CHECKING:
    from harness.nemesis import ActiveFault, Controls


def service_of(node: str) -> Service | None:
    """The service whose health endpoint says the node is ready (every NATS node: NATS's); None for
    netsync's nodes, which answer /healthz over HTTP."""
    return NATS if is_nats(node) else SURREALDB if node == "surrealdb" else None


DOWN = ("exited", "dead", "created")
KILL_TIMEOUT_S = 30.0
log = logging.getLogger(__name__)
# Who saw the container's state for the evidence: the engine read back, the kernel (its main process
# exited), or the cgroup's freezer (every process stopped).
ENGINE, KERNEL, FREEZER = "engine", "process exit", "cgroup freezer"


def _main_pid(ctr: Any) -> int:
    """The pid of the container's main process as the engine sees it; 0 when it is not running."""
    ctr.reload()
    return ctr.attrs["State"].get("Pid", 0) if ctr.status in ("running", "paused") else 0


def _sigkill(fd: int) -> None:
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    except ProcessLookupError:
        pass  # exited already: the pidfd is readable


def _pidfd(pid: int | None, container_id: str) -> int | None:
    """A pidfd of the container's main process, when it is a process of this machine (a local engine, the
    same pid namespace) and `pid` still is that process; else None."""
    if not pid or pid <= 0 or not hasattr(os, "pidfd_open"):
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    # Asked after the open: the pidfd holds this very process, not one that reused the pid.
    if not is_main_process(pid, container_id):
        os.close(fd)
        return None
    return fd


class ContainerControl:
    """The nemesis's hands on the engine. Like proxies, a container stopped or paused by several faults
    at once comes back when the last of them stops."""

    def __init__(self, sut: System, ready_timeout: float = 60.0) -> None:
        self.sut = sut
        self.ready_timeout = ready_timeout
        self._killed: Counter[str] = Counter()
        self._paused: Counter[str] = Counter()
        # Per node, so that a count and the container's state change together; other nodes go on meanwhile.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pending: dict[str, asyncio.Future[str]] = {}  # kills the engine is still answering
        self._gates: dict[str, asyncio.Event] = {}  # halted nodes waiting for `release` to die
        # Each node's main pid as last read from the engine: a kill checks it against /proc (the same
        # process still?) instead of asking the engine first; a stale one is asked for again.
        self._pids: dict[str, int] = {}
        # The nodes the nemesis froze through their cgroup itself: the engine still reports them running,
        # so they are thawed here, never by the engine's unpause.
        self._frozen: dict[str, Freezer] = {}

    async def wait_ready(self, node: str) -> None:
        service = service_of(node)
        if service is not None:
            await asyncio.to_thread(service.wait_ready, self.sut.run, node, self.ready_timeout)
        else:
            await asyncio.to_thread(self.sut.wait_http, node, self.ready_timeout)

    async def prepare(self) -> None:
        """The engine's connection and the worker threads the faults use, up before the first fault, and
        every node's main pid."""
        await asyncio.gather(*(self._read_pid(n) for n in self.sut.nodes))

    async def _read_pid(self, node: str) -> int:
        pid = await asyncio.to_thread(_main_pid, self._container(node))
        self._pids[node] = pid
        return pid

    def _container(self, node: str) -> Any:
        """The engine's handle on the node's container, as the topology made it: no inspection, so every
        engine call below is one the fault needs."""
        return self.sut.run.containers[node].get_wrapped_container()

    def _engine(self, node: str, act: Callable[[Any], object] | None, wait_down: bool = False) -> str:
        """In a worker thread: `act` on the container (a refusal because it is not running, or already
        paused, is nothing to do), with `wait_down` until the engine reports it not running, then its
        state read back."""
        ctr = self._container(node)
        if act is not None:
            try:
                act(ctr)
            except docker.errors.APIError as e:
                if e.status_code != 409:
                    raise
        if wait_down:
            # The kill is sent at once but takes effect when the engine has reaped the processes: the
            # engine's wait endpoint answers at that moment, where polling the state would add its interval.
            try:
                ctr.wait(timeout=30, condition="not-running")
            except requests.exceptions.RequestException as e:
                raise TopologyError(f"{node} did not stop within 30 s of the kill: {e}") from e
        ctr.reload()
        return ctr.status

    async def kill(self, node: str) -> dict[str, str]:
        """Kill the node's container and wait until it is down; its state then, and who saw it."""
        async with self._locks[node]:
            await self._settle(node)
            if self._killed[node] == 0:
                state = await self._kill(node)
            else:
                state = {"state": await asyncio.to_thread(self._engine, node, None), "seen": ENGINE}
            self._killed[node] += 1
            return state

    async def _kill(self, node: str) -> dict[str, str]:
        # The engine answers a kill once it has reaped the processes and torn down the container's
        # networks: 40 ms for a bare container, ~150 ms for an agent on several networks here, long after
        # the processes died and their connections dropped; and the request itself goes through dockerd,
        # containerd and the shim, each waiting its turn on a busy machine. When the engine runs on this
        # machine the nemesis holds a pidfd of the container's main process, sends it SIGKILL itself (what
        # the engine's kill sends; pid 1 of the container's pid namespace, so every process of the
        # container dies with it) and the kill has taken effect when the pidfd turns readable. The
        # engine then sees its container exit (code 137), as after its own kill; its `not-running` is
        # waited for before the node is touched again.
        ctr = self._container(node)
        fd = None
        frozen = self._frozen.pop(node, None)
        # A process frozen by the engine dies of SIGKILL only once thawed under cgroup v1: the engine kills
        # it (and thaws it); one frozen here is thawed here, right after the signal.
        if frozen is not None or not self._paused[node]:
            fd = _pidfd(self._pids.get(node), ctr.id)
            if fd is None:
                fd = _pidfd(await self._read_pid(node), ctr.id)
        self._pids.pop(node, None)  # whatever runs there next is another process
        if fd is None:  # a remote engine, or a paused container: the engine kills, and says when
            if frozen is not None:
                await asyncio.to_thread(frozen.thaw)
            return {
                "state": await asyncio.to_thread(self._engine, node, lambda c: c.kill(), True),
                "seen": ENGINE,
            }
        await self._exit(node, fd, frozen, signal_first=True)
        self._pending[node] = asyncio.ensure_future(asyncio.to_thread(self._engine, node, None, True))
        return {"state": "exited", "seen": KERNEL}

    async def _exit(self, node: str, fd: int, frozen: Freezer | None, signal_first: bool) -> None:
        """SIGKILL through the pidfd (unless sent already), thaw what was frozen here, and wait until the
        kernel says the process is gone (the pidfd turns readable); the pidfd is closed."""
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
        try:
            if signal_first:
                _sigkill(fd)
            if frozen is not None:
                await asyncio.to_thread(frozen.thaw)
            async with asyncio.timeout(KILL_TIMEOUT_S):
                await gone
        except TimeoutError:
            raise TopologyError(
                f"{node}'s main process still ran {KILL_TIMEOUT_S:g} s after SIGKILL"
            ) from None
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    async def halt(self, node: str) -> dict[str, str]:
        """A power loss's first step: every process of the node stopped at once by its cgroup's freezer
        and SIGKILLed while stopped, so none runs another instruction (and, as when the power goes, no
        connection is closed yet); its state then, and who saw it. The node stays so until `release`, which
        thaws it to die: its exit and the engine's teardown go on in the background and are waited for
        before the node is touched again. Where the nemesis cannot freeze (a remote engine), a `kill`."""
        async with self._locks[node]:
            await self._settle(node)
            if self._killed[node]:
                state = {"state": await asyncio.to_thread(self._engine, node, None), "seen": ENGINE}
            elif (frozen := self._frozen.get(node)) is None and self._paused[node]:
                state = await self._kill(node)  # paused by the engine: the engine kills it
            else:
                frozen = frozen or await self._freezer(node)
                fd = None if frozen is None else _pidfd(self._pids.get(node), self._container(node).id)
                if frozen is None or fd is None:
                    state = await self._kill(node)
                else:
                    if node not in self._frozen:
                        try:
                            await asyncio.to_thread(frozen.freeze)
                        except BaseException:
                            os.close(fd)  # the node was not halted: nothing will wait on its exit
                            raise
                    self._frozen.pop(node, None)
                    self._pids.pop(node, None)
                    _sigkill(fd)
                    gate = asyncio.Event()
                    self._gates[node] = gate
                    self._pending[node] = asyncio.ensure_future(self._die(node, fd, frozen, gate))
                    state = {"state": "halted", "seen": FREEZER}
            self._killed[node] += 1
            return state

    def release(self, node: str) -> None:
        """Let a halted node die (see `halt`)."""
        if (gate := self._gates.pop(node, None)) is not None:
            gate.set()

    async def _die(self, node: str, fd: int, frozen: Freezer, gate: asyncio.Event) -> str:
        await gate.wait()
        await self._exit(node, fd, frozen, signal_first=False)
        return await asyncio.to_thread(self._engine, node, None, True)

    async def _settle(self, node: str) -> None:
        """Wait for the engine to finish a kill it was still answering (see `_kill`), and a halted node to
        die (see `halt`)."""
        self.release(node)
        if (sent := self._pending.pop(node, None)) is not None:
            await sent

    async def start(self, node: str) -> None:
        async with self._locks[node]:
            await self._settle(node)
            if self._killed[node] == 1:
                ctr = await asyncio.to_thread(self.sut.run.raw, node)
                if ctr.status in DOWN:
                    await asyncio.to_thread(ctr.start)
                await self.wait_ready(node)
                await self._read_pid(node)  # for the next kill
            self._killed[node] = max(0, self._killed[node] - 1)

    async def restart_if_down(self, node: str) -> bool:
        """Start the node again if it stopped by itself (no kill of ours holds it down), and wait until it
        is ready; whether it had to. A node may stop on a failing disk."""
        async with self._locks[node]:
            await self._settle(node)
            if self._killed[node]:
                return False
            ctr = await asyncio.to_thread(self.sut.run.raw, node)
            if ctr.status not in DOWN:
                return False
            await asyncio.to_thread(ctr.start)
            await self.wait_ready(node)
            await self._read_pid(node)
            return True

    async def pause(self, node: str) -> dict[str, str]:
        """Freeze every process of the node's container; its state then, and who saw it."""
        async with self._locks[node]:
            await self._settle(node)
            if node in self._frozen:
                seen = {"state": "paused", "seen": FREEZER}
            elif self._paused[node] == 0 and (freezer := await self._freezer(node)) is not None:
                await asyncio.to_thread(freezer.freeze)
                self._frozen[node] = freezer
                seen = {"state": "paused", "seen": FREEZER}
            else:  # a remote engine, or a container paused by the engine already
                pause = (lambda ctr: ctr.pause()) if self._paused[node] == 0 else None
                seen = {"state": await asyncio.to_thread(self._engine, node, pause), "seen": ENGINE}
            self._paused[node] += 1
            return seen

    async def _freezer(self, node: str) -> Freezer | None:
        """The freezer of the node's running container when the engine runs on this machine; else None."""
        ctr = self._container(node)
        pid = self._pids.get(node)
        if not pid or not is_main_process(pid, ctr.id):
            pid = await self._read_pid(node)
        return Freezer.of(pid) if pid and is_main_process(pid, ctr.id) else None

    async def resume(self, node: str) -> None:
        async with self._locks[node]:
            await self._settle(node)
            if self._paused[node] == 1 and (freezer := self._frozen.pop(node, None)) is not None:
                await asyncio.to_thread(freezer.thaw)
                await self.wait_ready(node)
            elif self._paused[node] == 1:
                ctr = await asyncio.to_thread(self.sut.run.raw, node)
                if ctr.status == "paused":
                    await asyncio.to_thread(ctr.unpause)
                    await self.wait_ready(node)
            self._paused[node] = max(0, self._paused[node] - 1)

    async def revive_all(self) -> list[str]:
        """Unpause every paused node and start every stopped one, then wait until each is ready; the nodes
        touched. The safety net behind every fault's own stop."""
        self._killed.clear()
        self._paused.clear()
        for node in list(self._pending):
            try:
                await self._settle(node)
            except Exception as e:  # what the engine says next is what counts here
                log.warning("the kill of %s failed after its processes were gone: %s", node, e)
        touched: list[str] = []
        for node, freezer in list(self._frozen.items()):
            await asyncio.to_thread(freezer.thaw)
            del self._frozen[node]
            touched.append(node)
        for node in self.sut.nodes:
            ctr = await asyncio.to_thread(self.sut.run.raw, node)
            if ctr.status == "paused":
                await asyncio.to_thread(ctr.unpause)
                touched.append(node)
            elif ctr.status in DOWN:
                await asyncio.to_thread(ctr.start)
                touched.append(node)
        waits = await asyncio.gather(*(self.wait_ready(node) for node in touched), return_exceptions=True)
        failed = [
            f"{node}: {e}" for node, e in zip(touched, waits, strict=True) if isinstance(e, BaseException)
        ]
        if failed:
            raise TopologyError("not ready after the heal: " + "; ".join(failed))
        return touched


@dataclass
class Held:
    """A node held in a state (killed, paused) from start until stop brings it back."""

    hold: Callable[[str], Awaitable[dict[str, str]]]  # the state seen once the hold took effect, and by whom
    release: Callable[[str], Awaitable[None]]
    node: str
    target: dict[str, Any]
    evidence: dict[str, Any] | None = None  # the container's state read back after the hold
    _done: bool = False

    async def start(self) -> None:
        seen = await self.hold(self.node)
        self._done = True
        # The state once it took effect: the start event shows that the fault bit (docs/run-format.md).
        self.evidence = {"container": self.node, **seen}

    async def stop(self) -> None:
        if self._done:
            await self.release(self.node)
            self._done = False


def killed(containers: ContainerControl, node: str, target: dict[str, Any]) -> Held:
    return Held(containers.kill, containers.start, node, target)


def paused(containers: ContainerControl, node: str, target: dict[str, Any]) -> Held:
    return Held(containers.pause, containers.resume, node, target)


def crash(ctl: Controls, fault: CrashFault, fault_id: str) -> ActiveFault:
    return killed(ctl.containers, fault.target, {"node": fault.target})


def pause(ctl: Controls, fault: PauseFault, fault_id: str) -> ActiveFault:
    return paused(ctl.containers, fault.target, {"node": fault.target})


NEMESES: dict[str, Callable[[Controls, Any, str], ActiveFault]] = {"crash": crash, "pause": pause}
