"""`solar-chaos shrink` end to end on real containers, as a user meets it (docs/shrink.md, "A worked
example"): the ten random faults of tests/shrink/random-many.yaml against netsync with the planted bug
no-dedup-header fail with stream-duplicate, and the shrink hands back a confirmed schedule of one or two
faults in about twenty runs, linked from the original report.

Marked nightly: a first run and some twenty more take about 15 minutes on 2 cores, past CI's budget
(nightly-scenarios.yml runs it). SOLAR_CHAOS_LOCK names a lock file held around each run (the first one
here, then each of the shrink's through its --lock) to share a machine; never hold it around this test,
or the shrink waits on its own parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.paths import ROOT, reports_dir
from harness.scenario import load_scenarios
from harness.shrink.search import LOG, MINIMAL, MINIMAL_REPORT
from harness.store import REPORT
from harness.subrun import STOP_GRACE_S, held, run_cli

pytestmark = [pytest.mark.docker, pytest.mark.nightly]

SCENARIO = ROOT / "tests" / "shrink" / "random-many.yaml"
SEED = 11  # bench/README.md's measurements: the ten faults it draws, r1 to r10
BUDGET = "30m"
BUDGET_S = 30 * 60
MAX_FAULTS = 2
MAX_RUNS = 25  # ddmin's order on one culprit among ten, the other passes and the confirmation: about 20


def _lock() -> Path | None:
    lock = os.environ.get("SOLAR_CHAOS_LOCK")
    return Path(lock) if lock else None


def test_random_many_shrinks_to_a_confirmed_schedule_of_at_most_two_faults() -> None:
    reports = reports_dir() / "shrink-live" / time.strftime("%Y%m%d-%H%M%S")
    with held(_lock()):
        first = run_cli(
            [str(SCENARIO), "--seed", str(SEED), "--buggify", "no-dedup-header"],
            reports / "original",
            15 * 60,
        )
    assert first.verdict is not None and first.run_dir is not None, (
        f"no verdict (exit {first.rc}):\n{first.stderr_tail}"
    )
    kinds = {a["kind"] for a in first.verdict.get("anomalies", [])}
    assert first.verdict.get("valid") is False and "stream-duplicate" in kinds, (
        f"expected INVALID with stream-duplicate, got valid={first.verdict.get('valid')} "
        f"{sorted(kinds)}: {first.run_dir}"
    )

    cmd = [sys.executable, "-m", "harness.cli", "shrink", str(first.run_dir), "--budget", BUDGET]
    if (lock := _lock()) is not None:
        cmd += ["--lock", str(lock)]
    with open(reports / "shrink-stdout.txt", "w") as out, open(reports / "shrink-stderr.txt", "w") as err:
        rc = subprocess.run(
            cmd, cwd=ROOT, stdout=out, stderr=err, timeout=BUDGET_S + 2 * STOP_GRACE_S
        ).returncode
    said = (reports / "shrink-stdout.txt").read_text()
    assert rc == 0, (
        f"shrink exit {rc}, no confirmed minimal schedule:\n{said}\n{reports / 'shrink-stderr.txt'}"
    )
    assert_shrunk(first.run_dir)


def assert_shrunk(run_dir: Path) -> None:
    """What a user checks of `solar-chaos shrink RUN_DIR` once it has exited 0 (a resumed shrink too: its
    log then holds a result line per invocation, the last one counts)."""
    out = run_dir / "shrink"
    records = [json.loads(line) for line in (out / LOG).read_text().splitlines()]
    runs = [r for r in records if r["event"] == "run"]
    result = [r for r in records if r["event"] == "result"][-1]
    outcomes: dict[str, list[str]] = {}
    for r in runs:
        outcomes.setdefault(r["key"], []).append(r["outcome"])

    # The minimal schedule: a scenario file the loader takes, of at most two faults.
    minimal = out / MINIMAL
    ((_, scenario),) = load_scenarios(minimal)
    assert len(scenario.faults) <= MAX_FAULTS, f"{len(scenario.faults)} faults left: {minimal}"

    # Confirmed 2/3 (its search run counted), and every step the search accepted had failed.
    assert result["confirmed"] is True and result["minimal"] is not None, result
    assert outcomes[result["key"]].count("fails") >= 2, f"minimal's runs: {outcomes[result['key']]}"
    for step in (r for r in records if r["event"] == "smaller"):
        assert "fails" in outcomes[step["key"]], f"accepted without a failing run: {step}"

    assert len(runs) <= MAX_RUNS, f"{len(runs)} runs: {[(r['removed'], r['outcome']) for r in runs]}"

    # What the user opens: the original report links the minimal run's report.
    assert (out / MINIMAL_REPORT).is_file()
    assert "shrink/minimal.html" in (run_dir / REPORT).read_text()
