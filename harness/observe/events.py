"""The engine's word on the run's containers, as it happens: every death (with its exit code, and
whether the kernel's OOM killer did it), start, pause and unpause, from the engine's event stream.

A planned death (the nemesis's crash) and an unplanned one (a panic, the OOM killer, someone's
`docker kill`) look alike here; the checkers tell them apart against the history's faults
(docs/run-format.md, "Containers"). The stream ending while the run goes on means the engine itself
stopped or restarted: every container of the run stopped with it, and the run cannot go on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
from harness import engine
from harness.errors import HarnessError

log = logging.getLogger(__name__)

# The engine's container actions we keep; samples.jsonl's `container` field names them as the engine does.
ACTIONS = frozenset({"die", "oom", "start", "pause", "unpause"})
ENGINE_BACK_S = 120.0  # how long a run whose engine went away waits for it, to remove what it left


class EngineLost(HarnessError):
    """The Docker engine stopped answering in the middle of a run."""


class ContainerEvents:
    """`watch = ContainerEvents(run_id, now)`; `watch.start()`, then `watch.take()` returns the sample
    lines seen since the last call (each with its own `t` on the run's clock); `watch.lost` says why an
    engine's stream ended, when it ended before `watch.stop()`. `engines`: name -> client of each engine the
    run's containers live on (several over a placement, harness/topology/fleet.py); absent, this machine's."""

    def __init__(
        self, run_id: str, now: Callable[[], float], engines: dict[str, docker.DockerClient] | None = None
    ) -> None:
        self.run_id = run_id
        self.now = now
        self.engines = engines
        self.lost: str | None = None
        self.lost_at: float | None = None
        self._seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._streams: dict[str, Any] = {}
        self._oom: set[str] = set()  # nodes the OOM killer hit since their last start
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        # Opened here, not in the threads: a run whose engine cannot stream events fails before it starts.
        flt = {"type": "container", "label": f"{engine.RUN_LABEL}={self.run_id}"}
        for name, client in (self.engines or {"local": engine.client()}).items():
            self._streams[name] = client.api.events(decode=True, filters=flt)
        for name, stream in self._streams.items():
            t = threading.Thread(target=self._read, args=(name, stream), name=f"events-{name}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Stop reading; what was seen until now stays for `take`. Twice is harmless."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for stream in self._streams.values():
            try:
                stream.close()
            except Exception:  # the engine may be gone already
                pass
        for t in self._threads:
            t.join(timeout=5)

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            seen, self._seen = self._seen, []
        return seen

    def _read(self, name: str, stream: Any) -> None:
        which = "the engine" if self.engines is None else f"engine {name}"
        why = f"{which} closed its event stream"
        try:
            for event in stream:
                self._on(event)
        except Exception as e:  # a dropped connection: the engine went away
            why = f"{which}'s event stream broke ({type(e).__name__}: {e})"
        if not self._stopping.is_set() and self.lost is None:
            self.lost_at = round(self.now(), 3)
            self.lost = why
            log.warning("run %s: %s at t=%s", self.run_id, why, self.lost_at)

    def _on(self, event: dict[str, Any]) -> None:
        action = str(event.get("Action", event.get("status", "")))
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        node = attributes.get(engine.NODE_LABEL)
        if action not in ACTIONS or not node:
            return
        line = {"t": self._t(event), "source": node, "container": action}
        if action == "die":
            line["exit_code"] = _int(attributes.get("exitCode"))
            line["oom_killed"] = node in self._oom
        if action == "oom":
            self._oom.add(node)
        elif action == "start":
            self._oom.discard(node)
        with self._lock:
            self._seen.append(line)

    def _t(self, event: dict[str, Any]) -> float:
        """The event's engine time on the run's clock (the engine runs on this host's clock; another host's
        must keep its clock in step, as NTP does, or its events shift by the difference)."""
        now = self.now()
        nanos = event.get("timeNano")
        if not isinstance(nanos, int):
            return round(now, 3)
        ago = max(0.0, time.time() - nanos / 1e9)
        return round(max(0.0, now - ago), 3)


def await_engine(say: Callable[[str], None], timeout: float = ENGINE_BACK_S) -> bool:
    """After the engine was lost: wait until it answers again, so that the run's teardown can remove what
    it left (a restarted engine keeps the stopped containers and the networks). The reaper went with
    the old engine: the next run of this process starts a new one. False when it stayed away."""
    from testcontainers.core.container import Reaper

    deadline = time.monotonic() + timeout
    while True:
        try:
            engine.client().ping()
            break
        except Exception:
            if time.monotonic() > deadline:
                say(f"the engine did not come back within {timeout:g} s: remove what the run left with "
                    "`solar-chaos clean` once it answers")  # fmt: skip
                return False
            time.sleep(0.5)
    try:
        Reaper.delete_instance()
    except Exception as e:
        log.debug("old reaper: %s", e)
    say("the engine answers again: removing what it kept of the run")
    return True


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None
