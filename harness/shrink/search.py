"""The shrink itself: the passes in order, repeated until none makes the schedule smaller or the budget
ends, then the smallest shape confirmed (K of N runs fail the same way) and written out.

RUN_DIR/shrink/ holds shrink.jsonl (one line per run of a candidate, and the verdicts of the search),
each candidate's scenario file and run directories under c-<hash>/, minimal.yaml and minimal.html (the
confirmed minimal run's report). A shrink killed or interrupted resumes from shrink.jsonl: a candidate
already judged is never run again."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import store
from harness.report import write_report
from harness.scenario import ScenarioError
from harness.shrink.candidate import Origin, Shape
from harness.shrink.oracle import Judged, Outcome, Quota, judge_once
from harness.shrink.passes import PASSES
from harness.subrun import held

LOG = "shrink.jsonl"
MIN_RUN_S = 20.0  # a run is not started with less time left than this
MINIMAL = "minimal.yaml"
MINIMAL_REPORT = "minimal.html"
Say = Callable[[str], None]


class OutOfBudget(Exception):
    pass


@dataclass
class Result:
    original: Shape
    minimal: Shape | None  # None: nothing confirmed within the budget
    confirmed: bool
    candidates: int  # distinct candidates judged
    runs: int  # runs made by this invocation and earlier ones of the same shrink
    seconds: float
    minimal_file: Path | None = None
    minimal_report: Path | None = None
    notes: list[str] = field(default_factory=list)


class Shrink:
    def __init__(
        self,
        origin: Origin,
        budget_s: float,
        first: Quota,
        confirm: Quota,
        say: Say,
        lock: Path | None = None,
    ) -> None:
        self.origin, self.first, self.confirm, self.say, self.lock = origin, first, confirm, say, lock
        self.out = origin.run_dir / "shrink"
        self.out.mkdir(exist_ok=True)
        self.deadline = time.monotonic() + budget_s
        self.outcomes: dict[str, list[Outcome]] = {}
        self.invalid: dict[str, str] = {}
        self.runs = 0
        self.run_seconds: list[float] = []
        self.searching = True
        self.failing_run: dict[str, Path] = {}  # per candidate, a run directory that failed the same way
        self._resume()
        self.original = origin.shape()
        self.best = self.original
        # The original run failed: that is its first outcome (a confirmation runs it again).
        self.outcomes.setdefault(self.original.key(), ["fails"])

    # -- the log -------------------------------------------------------------------------------------

    def _resume(self) -> None:
        path = self.out / LOG
        if not path.exists():
            return
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill
            if rec.get("event") == "run":
                self.outcomes.setdefault(rec["key"], []).append(rec["outcome"])
                self.runs += 1
                self.run_seconds.append(rec.get("seconds", 0.0))
                if rec["outcome"] == "fails" and rec.get("run_dir"):
                    self.failing_run[rec["key"]] = Path(rec["run_dir"])
            elif rec.get("event") == "invalid":
                self.invalid[rec["key"]] = rec["error"]
        if self.runs:
            self.say(
                f"shrink: resuming from {path}: {len(self.outcomes)} candidates, {self.runs} runs on record"
            )

    def _log(self, **rec: Any) -> None:
        rec = {"t": round(time.time(), 3), **rec}
        with open(self.out / LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")

    # -- the oracle ----------------------------------------------------------------------------------

    def _folder(self, shape: Shape) -> Path:
        return self.out / ("c-" + hashlib.sha256(shape.key().encode()).hexdigest()[:12])

    def _file(self, shape: Shape, removed: str) -> Path | None:
        key = shape.key()
        if key in self.invalid:
            return None
        comment = f"shrink candidate of {self.origin.run_dir} ({removed})"
        try:
            return self.origin.write(shape, self._folder(shape), comment)
        except ScenarioError as e:
            self.invalid[key] = str(e)
            self._log(event="invalid", key=key, removed=removed, error=str(e))
            return None

    def _left(self) -> float:
        """Time left for the current phase: the search leaves the confirmation N runs of the mean length."""
        left = self.deadline - time.monotonic()
        if self.searching:
            mean = sum(self.run_seconds) / len(self.run_seconds) if self.run_seconds else 60.0
            left -= self.confirm.n * mean
        return left

    def holds(self, shape: Shape, quota: Quota, removed: str) -> bool:
        """Does `shape` fail the same way in K of N runs? Runs it as often as the quota needs, counting
        the runs on record first."""
        file = self._file(shape, removed)
        if file is None:
            return False
        key = shape.key()
        outcomes = self.outcomes.setdefault(key, [])
        while (decided := quota.decided(outcomes)) is None:
            reports = self._folder(shape) / f"run-{len(outcomes) + 1}"
            with held(self.lock):  # the time left is what is left once the machine is ours
                if self._left() < MIN_RUN_S:
                    raise OutOfBudget()
                judged = judge_once(self.origin, file, reports, self._left())
            if judged.stopped:  # cut short by the budget: it judged nothing, so nothing is recorded
                self._log(event="stopped", key=key, removed=removed, run_dir=str(judged.run_dir or ""))
                raise OutOfBudget()
            outcomes.append(judged.outcome)
            self.runs += 1
            self.run_seconds.append(judged.seconds)
            if judged.outcome == "fails" and judged.run_dir is not None:
                self.failing_run[key] = judged.run_dir
            self._log(
                event="run",
                key=key,
                removed=removed,
                shape=shape.describe(),
                faults=shape.fault_dicts(),
                outcome=judged.outcome,
                kinds=judged.kinds,
                run_dir=str(judged.run_dir) if judged.run_dir else None,
                seconds=round(judged.seconds, 1),
                detail=judged.detail,
            )
            self._progress(shape, judged)
        return decided

    def _fails(self, shape: Shape, removed: str) -> bool:
        if shape.size() >= self.best.size() and shape.key() != self.best.key():
            return False  # never a step sideways or back
        if self.holds(shape, self.first, removed):
            self.best = shape
            self._log(event="smaller", key=shape.key(), removed=removed, shape=shape.describe())
            return True
        return False

    def _progress(self, shape: Shape, judged: Judged) -> None:
        left = max(self._left(), 0)
        self.say(
            f"shrink {self.origin.name}: {len(self.outcomes)} candidates, {self.runs} runs | tried "
            f"{shape.describe()}: {judged.outcome} ({judged.seconds:.0f}s) | best: {self.best.describe()} | "
            f"{left / 60:.0f} min left"
        )

    # -- the search ----------------------------------------------------------------------------------

    def run(self) -> Result:
        t0 = time.monotonic()
        notes: list[str] = []
        chain = [self.original]
        try:
            while True:
                before = self.best.key()
                for name, make_smaller in PASSES:
                    self.say(f"shrink {self.origin.name}: pass '{name}' from {self.best.describe()}")
                    make_smaller(self.best, self._fails)
                    if self.best.key() != chain[-1].key():
                        chain.append(self.best)
                if self.best.key() == before:
                    break
        except OutOfBudget:
            notes.append("the budget ended during the search: the result may not be minimal")
            if self.best.key() != chain[-1].key():
                chain.append(self.best)  # a step the interrupted pass had accepted: confirmed first
        minimal, confirmed = None, False
        self.searching = False
        for shape in reversed(chain):  # the smallest that confirms; a shape that does not is never reported
            try:
                if self.holds(shape, self.confirm, "confirmation"):
                    minimal, confirmed = shape, True
                    break
                notes.append(f"{shape.describe()} failed only by chance (under {self.confirm}): not reported")
            except OutOfBudget:
                notes.append(f"the budget ended before {shape.describe()} was confirmed {self.confirm}")
                break
        result = Result(
            self.original, minimal, confirmed, len(self.outcomes), self.runs, time.monotonic() - t0
        )
        result.notes = notes
        if minimal is not None:
            self._write_minimal(minimal, result)
        self._log(
            event="result",
            minimal=minimal.describe() if minimal else None,
            key=minimal.key() if minimal else None,
            confirmed=confirmed,
            runs=self.runs,
            notes=notes,
        )
        return result

    def _write_minimal(self, minimal: Shape, result: Result) -> None:
        o = self.origin
        comment = (
            f"The smallest schedule found that still fails like {o.run_dir}\n"
            f"({', '.join(sorted(o.kinds))}): {minimal.describe()}, from {self.original.describe()}.\n"
            f"Confirmed {self.confirm} at seed {o.seed}; run it with\n"
            f"  solar-chaos run {self.out / MINIMAL} --seed {o.seed} {' '.join(o.sut_args)}"
        )
        result.minimal_file = o.write(minimal, self.out, comment, name="minimal")
        run_dir = self.failing_run.get(minimal.key(), o.run_dir)  # the original itself: its own report
        report = run_dir / store.REPORT
        if report.exists():
            shutil.copyfile(report, self.out / MINIMAL_REPORT)
            result.minimal_report = self.out / MINIMAL_REPORT
        write_report(o.run_dir)  # the original's report links to the shrunk one
