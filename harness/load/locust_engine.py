"""The Locust engine: the load runs in Locust as subprocesses (gevent and asyncio do not share a process),
headless, one local process or, with `workers`, one master and N workers (harness/load/locustfile.py).
Each load process writes its own history shard; the harness writes its own (nemesis) lines to one
more, and `finish()` merges them all into history.jsonl in time order. Locust's CSV, HTML report and
logs stay in the run directory's `locust/` folder. With `remote` engines, the workers are containers on them
instead (harness/load/remote.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from harness import store
from harness.errors import HarnessError
from harness.history import History
from harness.load.ops import ANSWERS_KEPT, Answered, LoadPlan
from harness.load.remote import Engine, RemoteWorkers, clock_bounds, master_addresses
from harness.load.shards import merge_shards, recent_answers
from harness.topology.ports import free_port

FOLDER = "locust"
HARNESS_SHARD = "history-harness.jsonl"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
READY_TIMEOUT_S = 90.0  # Locust's imports, the workers joining the master, the users spawned
STOP_TIMEOUT_S = 30.0  # from SIGINT to every Locust process gone (its CSV and HTML written)
FINISH_GRACE_S = 60.0  # past the plan's end plus a request's timeout, before the load is stopped anyway
POLL_S = 0.1


# Locust's processes die with the harness that started them, even a SIGKILLed one (they would otherwise go on
# sending load for their --run-time): PR_SET_PDEATHSIG, set by the child itself right after exec (a
# preexec_fn is unsafe in a process with threads). A parent already gone by then is seen as a new parent
# pid, and the child exits. The signal comes when the thread that started the child ends: _start runs on
# the event loop's thread, which lives as long as the harness.
_DIE_WITH_PARENT = (
    "import ctypes, os, runpy, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG\n"
    "parent, module = sys.argv.pop(1), sys.argv.pop(1)\n"
    "if os.getppid() != int(parent):\n"
    "    os._exit(1)\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


def dying_with_this_process(module: str, *args: str) -> list[str]:
    """The command for `python -m module args...` as a child killed when this process dies (Linux)."""
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), module, *args]


def harness_shard(out: Path) -> Path:
    (out / FOLDER).mkdir(exist_ok=True)
    return out / FOLDER / HARNESS_SHARD


class LocustLoad:
    """The same plan as the asyncio engine (harness/load/ops.py), sent by Locust."""

    engine = "locust"

    def __init__(
        self,
        urls: dict[str, str],
        history: History,
        plan: LoadPlan,
        cid_prefix: str,
        out: Path,
        workers: int = 0,
        say: Callable[[str], None] | None = None,
        remote: Sequence[Engine] = (),
        image: str = "",
        run_id: str = "",
    ) -> None:
        """`remote`: one engine per worker (then `workers` is their number), running the load image `image`
        under the run's labels (`run_id`)."""
        self.urls, self.history, self.plan, self.cid_prefix = dict(urls), history, plan, cid_prefix
        self.out, self.folder = out, out / FOLDER
        self.workers = len(remote) or workers
        self.remote = RemoteWorkers(remote, image, run_id, self.folder) if remote else None
        self.say = say or (lambda _: None)
        self.users = max(plan.clients, len(self.urls), self.workers)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.merged: dict[str, object] | None = None

    @property
    def processes(self) -> int:
        """How many processes send (and write a shard): the workers, or the one local process."""
        return self.workers or 1

    @property
    def counts(self) -> dict[str, int]:
        """Completions so far by `type:outcome`, summed over the load processes (each writes its own
        every second), for the progress line."""
        total: dict[str, int] = {}
        for k in range(self.processes):
            with contextlib.suppress(OSError, ValueError):
                for key, n in json.loads((self.folder / f"count-{k}").read_text()).items():
                    total[key] = total.get(key, 0) + n
        return total

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def answered(self, agent: str) -> list[Answered]:
        """The most recent answers (at most ANSWERS_KEPT) `agent` gave for certain, oldest first, read
        back from the end of the load processes' shards (for the `repeat` fault)."""
        found = [
            ta
            for k in range(self.processes)
            for ta in recent_answers(self.folder / f"history-{k}.jsonl", agent, ANSWERS_KEPT)
        ]
        found.sort(key=lambda ta: ta[0])
        return [a for _, a in found[-ANSWERS_KEPT:]]

    def pids(self) -> dict[str, int]:
        """The running Locust processes by their samples.jsonl source: `locust` alone, or
        `locust-master` and `locust-worker-K` in distributed mode."""
        return {
            (name if name == "locust" else f"locust-{name}"): p.pid
            for name, p in self.procs.items()
            if p.poll() is None
        }

    async def prepare(self) -> None:
        """Start Locust and wait until every load process has its users spawned (before t = 0)."""
        self.folder.mkdir(exist_ok=True)
        config = {
            "folder": str(self.folder),
            "plan": dataclasses.asdict(self.plan),
            "urls": self.urls,
            "cid_prefix": self.cid_prefix,
            "workers": self.workers,
            "remote": self.remote is not None,  # the master relays t = 0, markers and lines (remote.py)
        }
        bind, connect = ("127.0.0.1", []) if self.remote is None else master_addresses(self.remote.engines)
        (self.folder / "plan.json").write_text(json.dumps(config, indent=1))
        run_time = math.ceil(self.plan.duration + self.plan.timeout + READY_TIMEOUT_S + FINISH_GRACE_S)
        common = ["-f", str(LOCUSTFILE), "--headless", "--loglevel", "INFO"]
        lead = [
            *common,
            *("-u", str(self.users), "-r", str(self.users), "--run-time", f"{run_time}s"),
            *("--csv", str(self.folder / "locust"), "--html", str(self.folder / "report.html")),
            "--only-summary",
        ]
        if not self.workers:
            self._start("locust", [*lead, "--logfile", str(self.folder / "locust.log")])
        else:
            port = free_port()
            self._start(
                "master",
                [
                    *lead,
                    *("--master", "--master-bind-host", bind, "--master-bind-port", str(port)),
                    *(
                        "--expect-workers",
                        str(self.workers),
                        "--expect-workers-max-wait",
                        str(int(READY_TIMEOUT_S)),
                    ),
                    *("--logfile", str(self.folder / "master.log")),
                ],
            )
            if self.remote is not None:
                await asyncio.to_thread(self.remote.start, config, port, connect)
            for k in range(0 if self.remote else self.workers):
                self._start(
                    f"worker-{k}",
                    [
                        *common,
                        *("--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
                        *("--logfile", str(self.folder / f"worker-{k}.log")),
                    ],
                )
        started = time.monotonic()
        try:
            await self._until(
                lambda: all((self.folder / f"ready-{k}").exists() for k in range(self.processes)),
                started + READY_TIMEOUT_S,
                f"{self.processes} Locust load process(es) with {self.users} users spawned",
            )
        except TimeoutError as e:
            raise HarnessError(
                f"Locust not ready within {READY_TIMEOUT_S:g} s: {e}; logs in {self.folder}"
            ) from None
        self.say(
            f"locust ready in {time.monotonic() - started:.1f} s: {self.processes} load process(es), "
            f"{self.users} users ({self.folder})"
        )

    async def run(self) -> None:
        """Give the load processes t = 0 (the history's origin), then wait until each has completed its
        share of the plan; stop Locust so it writes its CSV and HTML."""
        self.begin()
        try:
            await self.wait_done()
        finally:
            await asyncio.to_thread(self.stop)

    def begin(self) -> None:
        """t = 0 for the load processes: the history's origin on the monotonic clock they share."""
        start = {"t0_monotonic": self.history.t0, "t0_unix": time.time() - self.history.now()}
        tmp = self.folder / ".start.json.tmp"
        tmp.write_text(json.dumps(start))
        tmp.replace(self.folder / "start.json")

    async def wait_done(self) -> None:
        """Until every load process has completed its share, or the plan's end plus a request's timeout
        and FINISH_GRACE_S has passed (what was sent and not answered then stays an invoke alone:
        unknown, info, to the checkers)."""
        deadline = self.history.t0 + self.plan.duration + self.plan.timeout + FINISH_GRACE_S
        try:
            await self._until(
                lambda: all((self.folder / f"done-{k}").exists() for k in range(self.processes)),
                deadline,
                f"every Locust load process done with its share of {self.plan.total} intents",
            )
        except TimeoutError as e:
            self.say(f"locust: {e}; stopping it")

    async def _until(self, condition: Callable[[], bool], deadline: float, awaited: str) -> None:
        while not condition():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise HarnessError(
                        f"locust {name} exited ({p.returncode}) while waiting for {awaited}; "
                        f"its log: {self.folder / (name + '.out')}\n{self._tail(name)}"
                    )
            if self.remote is not None and (gone := await asyncio.to_thread(self.remote.exited)):
                raise HarnessError(
                    f"locust worker {gone[0]} exited ({gone[1]}) while waiting for {awaited}:\n{gone[2]}"
                )
            if time.monotonic() > deadline:
                seen = sorted(p.name for p in self.folder.iterdir() if p.name.startswith(("ready-", "done-")))
                raise TimeoutError(f"waited for {awaited}; seen: {', '.join(seen) or 'no marker'}")
            await asyncio.sleep(POLL_S)

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.folder / f"{name}.out", "wb")
        self._logs.append(log)
        env = {**os.environ, "SOLAR_CHAOS_LOAD": str(self.folder / "plan.json"), "PYTHONUNBUFFERED": "1"}
        self.procs[name] = subprocess.Popen(
            dying_with_this_process("locust", *args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )

    def _tail(self, name: str, size: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / f"{name}.out").read_bytes()[-size:].decode(errors="replace")
        return ""

    def stop(self) -> None:
        """SIGINT the process that leads (it writes the CSV and HTML, then tells the workers to quit);
        whatever is still alive after STOP_TIMEOUT_S is killed."""
        lead = self.procs.get("master") or self.procs.get("locust")
        if lead is not None and lead.poll() is None:
            lead.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.remote is not None:
            for problem in self.remote.stop(max(1.0, deadline - time.monotonic())):
                self.say(f"locust: {problem}")
        for log in self._logs:
            log.close()
        self._logs.clear()

    def finish(self, say: Callable[[str], None] | None = None) -> None:
        """After the history's own shard is closed: merge every shard into history.jsonl."""
        say = say or self.say
        self.stop()
        shards = [self.folder / HARNESS_SHARD] + [
            self.folder / f"history-{k}.jsonl" for k in range(self.processes)
        ]
        merged = merge_shards(shards, self.out / store.HISTORY)
        self.merged = {"lines": merged.lines, "per_shard": merged.per_shard, "problems": merged.problems}
        if self.remote is not None:  # how early each remote worker's `t` may be (harness/load/remote.py)
            self.merged["clock_bound_s"] = clock_bounds(self.folder, self.workers)
        (self.folder / "merge.json").write_text(json.dumps(self.merged, indent=1) + "\n")
        for problem in merged.problems:
            say(f"history merge: {problem}")
        if not merged.problems:  # history.jsonl holds every line: the shards would only double the run's size
            for shard in shards:
                shard.unlink(missing_ok=True)
