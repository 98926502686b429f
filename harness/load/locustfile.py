"""The Locust side of the load (runs inside `locust`, under gevent, never imported by the harness): each
load process takes its share of the seeded plan (intents whose index is its worker index modulo the
worker count), queues each at its due time (open loop, whatever the users are doing), and its users,
one operation at a time each, post what the queue hands them. Every operation goes to the process's
history shard as invoke, then ok/fail/info, with `t` on the harness's clock (docs/run-format.md).

Files in the folder named by $SOLAR_CHAOS_LOAD's plan: `start.json` (written by the harness at t = 0:
its CLOCK_MONOTONIC origin, the clock every process of this host shares), `ready-K` (this process's
users are spawned), `count-K` (operations completed so far), `done-K` (its share is complete),
`history-K.jsonl` (its shard)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.queue
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from harness.load.ops import Intent, LoadPlan, completion, intents, invoke

# The harness stops Locust with SIGINT, the one signal after which it still writes its HTML report; a
# harness started in the background by a non-interactive shell hands SIGINT down ignored, and Python
# then installs no handler of its own: install it here, in each Locust process's main thread.
signal.signal(signal.SIGINT, signal.default_int_handler)

CONFIG: dict[str, Any] = json.loads(Path(os.environ["SOLAR_CHAOS_LOAD"]).read_text())
FOLDER = Path(CONFIG["folder"])
PLAN = LoadPlan(**CONFIG["plan"])
URLS: dict[str, str] = CONFIG["urls"]
HEADERS = {"content-type": "application/json"}
START_POLL_S = 0.002  # how often a process looks for start.json before t = 0

feed: gevent.queue.Queue[Intent] = gevent.queue.Queue()
users = itertools.count()
state: dict[str, Any] = {"index": 0, "completed": 0, "share": 0, "t0": None}
counts: dict[str, int] = {}  # completions by `type:outcome`, as the harness's History counts them
shard: Any = None


def now() -> float:
    return time.monotonic() - state["t0"]


def record(op: dict[str, Any]) -> None:
    shard.write(json.dumps({"t": round(now(), 6), **op}, separators=(",", ":")) + "\n")


def _marker(name: str, text: str = "") -> None:
    tmp = FOLDER / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(FOLDER / name)  # whole or absent: the harness polls for it


def schedule(index: int, workers: int) -> None:
    """Queue this process's share of the plan at each intent's due time, from t = 0 on."""
    while not (FOLDER / "start.json").exists():
        gevent.sleep(START_POLL_S)
    state["t0"] = json.loads((FOLDER / "start.json").read_text())["t0_monotonic"]
    for intent in intents(PLAN, list(URLS), CONFIG["cid_prefix"], share=(index, workers)):
        delay = intent.at - now()
        if delay > 0:
            gevent.sleep(delay)
        feed.put(intent)


def report_progress() -> None:
    while True:
        gevent.sleep(1.0)
        _marker(f"count-{state['index']}", json.dumps(counts))


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    global shard
    runner = ENV["environment"].runner
    if isinstance(runner, MasterRunner) or shard is not None:
        return
    index, workers = runner.worker_index, CONFIG["workers"] or 1
    state["index"], state["share"] = index, len(range(index, PLAN.total, workers))
    shard = open(FOLDER / f"history-{index}.jsonl", "a", buffering=1)  # line-buffered: no half lines kept
    gevent.spawn(schedule, index, workers)
    gevent.spawn(report_progress)
    _marker(f"ready-{index}", str(user_count))


ENV: dict[str, Environment] = {}


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    ENV["environment"] = environment


class IntentUser(FastHttpUser):
    """One client (Jepsen's process): one intent at a time, to whichever agent the plan names."""

    host = next(iter(URLS.values()))
    wait_time = constant(0)
    network_timeout = connection_timeout = PLAN.timeout

    def on_start(self) -> None:
        self.process = f"w{self.environment.runner.worker_index}.c{next(users)}"  # set before spawning

    @task
    def intent(self) -> None:
        intent = feed.get()
        record(invoke(self.process, intent))
        url = f"{URLS[intent.agent]}/intents"
        with self.client.post(
            url, data=intent.body(), headers=HEADERS, name=f"intent {intent.agent}", catch_response=True
        ) as r:
            status = r.status_code or None
            error = None if status else f"{type(r.error).__name__}: {r.error}"
            try:
                payload = r.content or b""
            except Exception:  # a body cut short: the status still decides
                payload = b""
            done = completion(self.process, intent, status, payload, error)
            record(done)
            key = f"{done['type']}:{done.get('outcome', '')}"
            counts[key] = counts.get(key, 0) + 1
            if done["type"] == "ok":
                r.success()
            else:
                r.failure(done.get("outcome") or done.get("error") or "unknown")
        state["completed"] += 1
        if state["completed"] == state["share"]:
            _marker(f"count-{state['index']}", json.dumps(counts))
            _marker(f"done-{state['index']}", str(state["completed"]))
