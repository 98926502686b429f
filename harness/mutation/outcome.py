"""A mutant's outcome from its scenarios' results: killed, survived or timed out, and the score. Pure,
so that what counts as a kill is tested without Docker."""

from __future__ import annotations

from dataclasses import dataclass, field

KILLED, SURVIVED, TIMED_OUT, ERROR = "killed", "survived", "timed-out", "error"
OUTCOMES = (KILLED, SURVIVED, TIMED_OUT, ERROR)


@dataclass
class ScenarioResult:
    scenario: str
    seconds: float
    rc: int | None  # `solar-chaos run`'s exit code; None when it was stopped past the budget
    verdict: dict | None = None  # verdict.json, when the run got that far
    tail: str = ""  # the last lines it printed on stderr, for a run that ended without a verdict
    run_dir: str = ""

    def as_dict(self) -> dict:
        kinds = sorted({a.get("kind", "?") for a in (self.verdict or {}).get("anomalies", [])})
        return {
            "scenario": self.scenario,
            "seconds": round(self.seconds, 1),
            "rc": self.rc,
            "valid": None if self.verdict is None else self.verdict.get("valid"),
            "anomalies": kinds,
            "run_dir": self.run_dir,
            **({"tail": self.tail} if self.verdict is None and self.tail else {}),
        }


@dataclass
class Classified:
    outcome: str
    by: str = ""  # the scenario that killed it, or that ran out of time
    how: str = ""  # "verdict invalid: lost, phantom", "no verdict: ..."
    kinds: list[str] = field(default_factory=list)


# What `solar-chaos run` says when the engine, not the system under test, failed: not a kill.
ENGINE_WORDS = ("engine lost", "cannot connect to the docker daemon", "no space left on device")


def classify(results: list[ScenarioResult]) -> Classified:
    """Killed by the first scenario whose verdict is invalid, or that ended without a verdict because the
    system did not come up or the harness stopped on it (a mutant that crashes a node at start); timed
    out when a run was stopped past the mutant's budget; survived when every verdict is valid. A run that
    failed for the engine's sake is an error: not counted in the score."""
    for r in results:
        if r.rc is None:
            return Classified(TIMED_OUT, r.scenario, "stopped past the mutant's budget")
        if r.verdict is not None and r.verdict.get("valid") is False:
            kinds = sorted({a.get("kind", "?") for a in r.verdict.get("anomalies", [])})
            return Classified(
                KILLED, r.scenario, "verdict invalid: " + (", ".join(kinds) or "no anomaly"), kinds
            )
        if r.verdict is None:
            last = r.tail.strip().splitlines()[-1] if r.tail.strip() else f"exit code {r.rc}"
            if any(w in r.tail.lower() for w in ENGINE_WORDS):
                return Classified(ERROR, r.scenario, f"engine failure: {last}")
            return Classified(
                KILLED, r.scenario, f"no verdict (the system did not come up or a node died): {last}"
            )
        if r.verdict.get("valid") is not True:  # unknown: a check could not judge
            return Classified(ERROR, r.scenario, "verdict neither valid nor invalid")
    return Classified(SURVIVED)


def score(outcomes: list[str]) -> dict:
    """Counts per outcome and the mutation score, killed / (killed + survived): a timed-out mutant is
    neither (reported beside it: a hang the budget cut, or a budget too short), an error is not counted."""
    counts = {o: outcomes.count(o) for o in OUTCOMES}
    judged = counts[KILLED] + counts[SURVIVED]
    return counts | {"score": round(counts[KILLED] / judged, 3) if judged else None}
