"""The harness under its own faults: `solar-chaos run` SIGKILLed at a random moment of its life, then
`solar-chaos clean`, leaves nothing of the run behind: no container, network or volume with the run's
label (nor a volume one of its containers mounted), no mount of its containers on the host, no process
of the killed harness's session (Locust would go on sending load), a run directory whose every
complete line parses and that `solar-chaos check` judges or refuses clearly, and `solar-chaos doctor`
green.

SOLAR_CHAOS_KILL_RUNS kills (default 8, each its own test item); SOLAR_CHAOS_KILL_SEED draws the kill
moments again (each item prints it). `docs/operations.md`, "The kill test"."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import engine
from harness.paths import ROOT, cache_dir
from harness.waiting import WaitTimeout, wait_until

RUNS = int(os.environ.get("SOLAR_CHAOS_KILL_RUNS") or 8)
SEED = int(os.environ.get("SOLAR_CHAOS_KILL_SEED") or random.SystemRandom().randrange(10**6))
# One unkilled run of SCENARIO takes 29 s from exec to exit (the images checked, bring-up 6.7 s, Locust
# ready 1.8 s, 13.3 s of load, drain and collection, teardown, checkers and report): kill moments are
# drawn uniformly over it.
LIFE_S = 29.0
# The user's `clean` comes at once or later: up to 12 s after the kill it may meet the killed harness's
# reaper, which removes the run 10 s after the harness's connection dropped (RYUK_RECONNECTION_TIMEOUT).
CLEAN_AFTER_S = 12.0
ORPHAN_GRACE_S = 10.0

# A container paused (agent-2, then NATS too) while a link is cut, under Locust's master and one worker,
# so a kill can land with a container paused, a toxic in and load processes running.
SCENARIO = """\
name: killed
description: a short run with a pause, a partition and a paused NATS, for the kill test
load: {rate: 10, duration: 12s, engine: locust}
faults:
  - {at: 1s, for: 6s, fault: pause, target: agent-2}
  - {at: 2s, for: 6s, fault: partition, groups: [[agent-1], [agent-2, agent-3]], mode: blackhole}
  - {at: 4s, for: 4s, fault: outage, target: nats, mode: pause}
"""

# The harness's progress lines, in order: the last one seen before the kill names its phase.
PHASES = [
    ("system up in", "load starting (Locust)"),
    ("locust ready", "load"),
    ("load done at", "drain"),
    ("collected", "teardown and judging"),
    ("PASS ", "exited"),
    ("FAIL ", "exited"),
]


def phase_of(output: str) -> str:
    phase = "bring-up"
    for line in output.splitlines():
        for start, name in PHASES:
            if start in line:
                phase = name
        if line.startswith("t=") and "faults:" in line:
            phase = f"load, faults: {line.split('faults:', 1)[1].strip()}"
    return phase


@dataclass
class Snapshot:
    """The killed harness's resources on the engine, as the kill left them."""

    runs: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)  # container name: status
    ids: list[str] = field(default_factory=list)  # container ids and overlay dirs, for mountinfo
    volumes: set[str] = field(default_factory=set)  # volumes the containers mounted, labelled or not


def owned_by(pid: int) -> list[engine.RunResources]:
    return [r for r in engine.list_runs().values() if r.owner.split(":")[1:2] == [str(pid)]]


def snapshot(pid: int) -> Snapshot:
    snap = Snapshot()
    for res in owned_by(pid):
        snap.runs.append(res.run_id)
        snap.volumes |= {v.name for v in res.volumes}
        for ctr in res.containers:
            snap.states[ctr.name] = ctr.status
            snap.ids.append(ctr.id)
            try:
                ctr.reload()
            except Exception:
                continue
            snap.volumes |= {m["Name"] for m in ctr.attrs.get("Mounts", []) if m.get("Type") == "volume"}
            merged = (ctr.attrs.get("GraphDriver") or {}).get("Data") or {}
            snap.ids += [p for p in (merged.get("MergedDir"), merged.get("UpperDir")) if p]
    return snap


def left_processes(session: int, marker: str) -> list[str]:
    """Live processes of the killed harness's session, or naming its reports folder (Locust's args)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z" and (int(fields[3]) == session or marker in cmd):  # state, session
            found.append(f"pid {d.name}: {cmd[:160]}")
    return found


def host_dirs(run_id: str) -> list[Path]:
    """Files or folders named after the run outside its run directory: in the cache (where a run's host
    mounts would live) or the temporary folder, two levels down."""
    bases = (cache_dir(), Path(tempfile.gettempdir()))
    return [p for base in bases for pattern in (f"*{run_id}*", f"*/*{run_id}*") for p in base.glob(pattern)]


def unreadable(folder: Path) -> list[str]:
    """Every complete line of every .jsonl, and every .json, must parse (a line cut by the kill, the last
    one without its newline, is allowed)."""
    problems = []
    for path in sorted(folder.rglob("*.json*")):
        if path.suffix not in (".json", ".jsonl"):
            continue
        text = path.read_text(errors="replace")
        lines = text.split("\n")[:-1] if path.suffix == ".jsonl" else [text]
        for n, line in enumerate(lines, 1):
            if path.suffix == ".json" or line:
                try:
                    json.loads(line)
                except ValueError as e:
                    problems.append(f"{path.relative_to(folder)}:{n}: {e}")
    return problems


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The harness SIGKILLed with a child that sends load: the child must not outlive it (Locust's processes
# are started this way).
PARENT = """\
import subprocess, sys, time
from harness.load.locust_engine import dying_with_this_process
child = subprocess.Popen(dying_with_this_process("http.server", "0", "--bind", "127.0.0.1"))
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_child_started_like_locust_dies_with_its_sigkilled_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(parent.stdout.readline())
    try:
        time.sleep(0.5)  # the child past its exec and its prctl
        assert Path(f"/proc/{child}").exists()
        parent.kill()
        parent.wait()
        wait_until(lambda: not left_processes(parent.pid, "http.server"), "the child to die", timeout=5)
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("k", range(RUNS), ids=[f"kill{k + 1}of{RUNS}" for k in range(RUNS)])
def test_a_harness_sigkilled_at_a_random_moment_then_clean_leaves_nothing(images, tmp_path, k) -> None:
    rng = random.Random(f"{SEED}-{k}")
    delay, clean_after = rng.uniform(0, LIFE_S), rng.uniform(0, CLEAN_AFTER_S)
    again = f"SOLAR_CHAOS_KILL_SEED={SEED} SOLAR_CHAOS_KILL_RUNS={RUNS} pytest {__file__} -k kill{k + 1}of"
    print(f"kill {k + 1}/{RUNS}: seed {SEED}, at {delay:.2f} s of {LIFE_S:g}; again: {again}")
    (tmp_path / "killed.yaml").write_text(SCENARIO)
    reports, log = tmp_path / "reports", tmp_path / "harness.out"
    with open(log, "w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", str(tmp_path / "killed.yaml"), "--load-workers", "1"]
            + ["--images", images.mode.value, "--reports", str(reports)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=delay)
            phase = "exited"
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            phase = phase_of(log.read_text())
        proc.wait()
    at = time.monotonic() - started
    snap = snapshot(proc.pid)
    paused = sorted(n for n, s in snap.states.items() if s == "paused")
    print(f"  killed at {at:.2f} s in {phase}; containers {len(snap.states)}, paused {paused or 'none'}")
    run_ids = [d.name for d in reports.iterdir()] if reports.exists() else []
    assert set(snap.runs) <= set(run_ids), f"resources of a run with no run directory: {snap.runs}"

    time.sleep(clean_after)
    t = time.monotonic()
    clean = cli("clean")
    took = time.monotonic() - t
    print(f"  clean {clean_after:.1f} s after the kill, in {took:.2f} s: {clean.stdout.strip()}")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    for run_id in run_ids:
        assert not engine.list_runs(run_id), f"run {run_id} left resources after clean"
        assert not host_dirs(run_id), f"run {run_id} left on the host: {host_dirs(run_id)}"
    assert not owned_by(proc.pid), "resources owned by the killed harness left after clean"
    vols = {v.name for v in engine.client().volumes.list()}
    assert not snap.volumes & vols, f"volumes of the run's containers left: {snap.volumes & vols}"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not [i for i in snap.ids if i in mounts], "a mount of the run's containers is left on the host"
    assert not [r for r in run_ids if r in mounts], "a host mount named after the run (faultfs) is left"

    left: list[str] = []

    def no_orphans() -> bool:
        left[:] = left_processes(proc.pid, str(reports))
        return not left

    try:
        wait_until(no_orphans, "the killed harness's children to die", timeout=ORPHAN_GRACE_S, interval=0.2)
    except WaitTimeout:
        pytest.fail(f"processes of the killed harness still run {ORPHAN_GRACE_S:g} s later: {left}")

    for run_dir in sorted(reports.glob("*/*")) if reports.exists() else []:
        assert not unreadable(run_dir), unreadable(run_dir)
        check = cli("check", str(run_dir))
        print(f"  check: exit {check.returncode}, {(check.stdout + check.stderr).strip()[:300]}")
        assert check.returncode in (0, 1, 2) and "Traceback" not in check.stderr, check.stderr[-3000:]

    doctor = cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
