"""Does a candidate still fail the same way? One run of it (`solar-chaos run` as a child process, at the
original's seed, on the original's system under test) is `fails` when its verdict holds an anomaly of a
kind the original showed (for a cid anomaly, any cid), `passes` when it is judged without one, and
`error` when it could not be judged (no verdict, or "valid": "unknown"): an error never counts as a
failure. A candidate still fails when at least K of N runs fail, so a flaky failure is not chased."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.shrink.candidate import Origin
from harness.subrun import run_cli

Outcome = Literal["fails", "passes", "error"]


@dataclass(frozen=True)
class Quota:
    """K of N: at least `k` failing runs out of at most `n`."""

    k: int
    n: int

    @classmethod
    def parse(cls, text: str, option: str) -> Quota:
        k, sep, n = text.partition("/")
        if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n) <= 20):
            raise ValueError(f"{option} {text!r}: allowed K/N with 1 <= K <= N <= 20, e.g. 1/1 or 2/3")
        return cls(int(k), int(n))

    def decided(self, outcomes: list[Outcome]) -> bool | None:
        """True once K failed, False once K can no longer be reached in N, else None (run again)."""
        failed = outcomes.count("fails")
        if failed >= self.k:
            return True
        if failed + (self.n - len(outcomes)) < self.k:
            return False
        return None

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


@dataclass(frozen=True)
class Judged:
    outcome: Outcome
    kinds: list[str]  # every anomaly kind of its verdict
    run_dir: Path | None
    seconds: float
    detail: str  # for an error: why it could not be judged
    stopped: bool = False  # stopped at its deadline (the budget's end): not a judgement at all


def judge_once(origin: Origin, file: Path, reports: Path, timeout_s: float) -> Judged:
    child = run_cli([str(file), "--seed", str(origin.seed), *origin.sut_args], reports, timeout_s)
    verdict = child.verdict
    if verdict is None or verdict.get("valid") not in (True, False):
        why = "stopped at the budget's end" if child.rc is None else f"exit {child.rc}, no verdict"
        if verdict is not None:
            why = f"not judged: {verdict.get('error') or verdict.get('valid')}"
        tail = child.stderr_tail[-400:]
        return Judged("error", [], child.run_dir, child.seconds, f"{why}; {tail}", stopped=child.rc is None)
    kinds = sorted({a.get("kind") for a in verdict.get("anomalies", []) if isinstance(a, dict)} - {None})
    outcome: Outcome = "fails" if origin.kinds & set(kinds) else "passes"
    return Judged(outcome, kinds, child.run_dir, child.seconds, "")
