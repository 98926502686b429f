"""The Locust side of the load (runs inside `locust`, under gevent, never imported by the harness): each
load process takes its share of the seeded plan (intents whose index is its worker index modulo the
worker count), queues each at its due time (open loop, whatever the users are doing), and its users,
one operation at a time each, post what the queue hands them. Every operation goes to the process's
history shard as invoke, then ok/fail/info, with `t` on the harness's clock (docs/run-format.md).

Files in the folder named by $SOLAR_CHAOS_LOAD's plan: `start.json` (written by the harness at t = 0:
its CLOCK_MONOTONIC origin, the clock every process of this host shares), `ready-K` (this process's
users are spawned), `count-K` (operations completed so far), `done-K` (its share is complete),
`history-K.jsonl` (its shard).

A remote worker (in the load image on another engine: harness/load/remote.py) shares neither that folder nor
that clock. Its config comes inline ($SOLAR_CHAOS_LOAD_JSON, `"remote": true`), and Locust's own messages
carry the rest: the master, here, relays start.json as `sc-start` (the seconds since t = 0 when it sends),
and writes what the workers send it into the folder as a local process would have: `sc-marker` (ready-K,
count-K, done-K) and `sc-lines` (history lines, appended to history-K.jsonl). A worker's `t` is the master's
`since` plus its own monotonic time since it received it: early by the message's one-way delay, which the
master bounds by the round trip of `sc-start` and its answer `sc-started` (written to `clock-K`)."""

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

CONFIG: dict[str, Any] = json.loads(
    os.environ.get("SOLAR_CHAOS_LOAD_JSON") or Path(os.environ["SOLAR_CHAOS_LOAD"]).read_text()
)
REMOTE: bool = CONFIG.get("remote", False)
FOLDER = Path(CONFIG["folder"])  # on the master's machine: a remote worker writes nothing there itself
PLAN = LoadPlan(**CONFIG["plan"])
URLS: dict[str, str] = CONFIG["urls"]
HEADERS = {"content-type": "application/json"}
START_POLL_S = 0.002  # how often a process looks for start.json before t = 0
RELAY_S = 0.2  # how often a remote worker sends its new history lines to the master

feed: gevent.queue.Queue[Intent] = gevent.queue.Queue()
users = itertools.count()
state: dict[str, Any] = {"index": 0, "completed": 0, "share": 0, "t0": None}
counts: dict[str, int] = {}  # completions by `type:outcome`, as the harness's History counts them
shard: Any = None


def now() -> float:
    return time.monotonic() - state["t0"]


def record(op: dict[str, Any]) -> None:
    line = json.dumps({"t": round(now(), 6), **op}, separators=(",", ":")) + "\n"
    if REMOTE:
        pending.append(line)
    else:
        shard.write(line)


def _write_marker(name: str, text: str) -> None:
    tmp = FOLDER / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(FOLDER / name)  # whole or absent: the harness polls for it


def _marker(name: str, text: str = "") -> None:
    if REMOTE:
        relay()  # the lines first: done-K must not reach the master before them
        ENV["environment"].runner.send_message("sc-marker", {"name": name, "text": text})
    else:
        _write_marker(name, text)


pending: list[str] = []  # a remote worker's history lines not yet sent to the master


def relay() -> None:
    if pending:
        lines = "".join(pending)
        pending.clear()
        ENV["environment"].runner.send_message("sc-lines", {"index": state["index"], "lines": lines})


def relaying() -> None:
    while True:
        gevent.sleep(RELAY_S)
        relay()


def schedule(index: int, workers: int) -> None:
    """Queue this process's share of the plan at each intent's due time, from t = 0 on."""
    if REMOTE:
        while state["t0"] is None:
            gevent.sleep(START_POLL_S)
    else:
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
    if REMOTE:
        shard = pending
        gevent.spawn(relaying)
    else:
        shard = open(FOLDER / f"history-{index}.jsonl", "a", buffering=1)  # line-buffered: no half lines
    gevent.spawn(schedule, index, workers)
    gevent.spawn(report_progress)
    _marker(f"ready-{index}", str(user_count))


ENV: dict[str, Environment] = {}


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    ENV["environment"] = environment
    if not REMOTE:
        return
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message("sc-marker", _on_marker)
        runner.register_message("sc-lines", _on_lines)
        runner.register_message("sc-started", _on_started)
        gevent.spawn(_relay_start, runner)
    else:
        runner.register_message("sc-start", _on_start)


# The master's side of a remote run.
sent: dict[str, float] = {}  # when sc-start went out, on the master's clock


def _relay_start(runner: MasterRunner) -> None:
    """At t = 0 (start.json written by the harness): tell every worker how long ago t = 0 was."""
    while not (FOLDER / "start.json").exists():
        gevent.sleep(START_POLL_S)
    t0 = json.loads((FOLDER / "start.json").read_text())["t0_monotonic"]
    sent["at"] = time.monotonic()
    runner.send_message("sc-start", {"since": sent["at"] - t0})


def _on_marker(environment: Environment, msg: Any, **_: Any) -> None:
    _write_marker(msg.data["name"], msg.data["text"])


def _on_lines(environment: Environment, msg: Any, **_: Any) -> None:
    with open(FOLDER / f"history-{int(msg.data['index'])}.jsonl", "a") as f:
        f.write(msg.data["lines"])


def _on_started(environment: Environment, msg: Any, **_: Any) -> None:
    """A worker got sc-start: the round trip bounds how early its clock is (written to clock-K)."""
    rtt = time.monotonic() - sent["at"]
    _write_marker(f"clock-{int(msg.data['index'])}", json.dumps({"round_trip_s": round(rtt, 6)}))


# A remote worker's side.
def _on_start(environment: Environment, msg: Any, **_: Any) -> None:
    state["t0"] = time.monotonic() - float(msg.data["since"])
    environment.runner.send_message("sc-started", {"index": environment.runner.worker_index})


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    if REMOTE and not isinstance(environment.runner, MasterRunner):
        relay()  # what was answered after the last relay, before Locust stops (a share not done in time)


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
