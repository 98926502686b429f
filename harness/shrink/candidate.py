"""The failing run a shrink starts from, and the candidates it tries: each a plain scenario file (no
`random` block: every fault written out), the original's other fields kept, run at the original's seed
with the original's system under test."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from harness import store
from harness.checkers.run import Run
from harness.paths import ROOT
from harness.scenario import Scenario, ScenarioError
from harness.scenario.loader import load_scenario, load_scenarios
from harness.schedule import plan
from harness.store import RunDirError


class ShrinkError(Exception):
    """The run cannot be shrunk: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Shape:
    """What the search changes: the faults (each as canonical JSON of its file form), the agents, the
    load's rate and duration. Everything else stays as the original ran."""

    faults: tuple[str, ...]
    agents: int
    rate: float
    duration: float

    def key(self) -> str:
        return json.dumps([list(self.faults), self.agents, self.rate, self.duration], sort_keys=True)

    def fault_dicts(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.faults]

    def with_faults(self, faults: list[dict[str, Any]]) -> Shape:
        return replace(self, faults=tuple(canonical(f) for f in faults))

    def size(self) -> tuple[int, float, int, float]:
        """Smaller is better, in this order: fewer faults, less fault time, fewer agents, less load."""
        seconds = sum(f.get("for") or max(self.duration - f["at"], 0) for f in self.fault_dicts())
        return (len(self.faults), round(seconds, 3), self.agents, round(self.rate * self.duration, 3))

    def describe(self) -> str:
        return f"{len(self.faults)} faults, {self.agents} agents, {self.rate:g}/s for {self.duration:g}s"


def canonical(fault: dict[str, Any]) -> str:
    return json.dumps(fault, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Origin:
    """The failing run: where its scenario came from, how it ran, and how it failed."""

    run_dir: Path
    file: Path  # the scenario file its `rerun` names
    param: str
    seed: int
    sut_args: tuple[str, ...]  # --sut / --sut-image / --buggify / --load-workers / --hosts as it ran
    kinds: frozenset[str]  # the anomaly kinds of its verdict: a candidate must show one of them
    scenario: Scenario  # as it ran: parameter set and overrides applied

    @property
    def name(self) -> str:
        return self.scenario.name

    def shape(self) -> Shape:
        """The original's faults, its random block's drawn ones written out (f1.. then r1.., as planned)."""
        faults = {
            step.fault_id: step.fault for step in plan(self.scenario, self.seed) if step.action == "start"
        }
        dicts = [f.model_dump(mode="json", by_alias=True, exclude_none=True) for f in faults.values()]
        s = self.scenario
        return Shape(tuple(canonical(d) for d in dicts), s.topology.agents, s.load.rate, s.load.duration)

    def document(self, shape: Shape, name: str | None = None) -> dict[str, Any]:
        """The scenario file of `shape`: the original's fields with its faults, agents, rate and duration."""
        doc = self.scenario.model_dump(
            mode="json",
            by_alias=True,
            exclude={"matrix", "expected_failures", "random", "markers"},
            exclude_none=True,
        )
        doc["name"] = name or self.name
        doc["seed"] = self.seed
        doc["faults"] = shape.fault_dicts()
        doc["topology"]["agents"] = shape.agents
        doc["load"]["rate"] = shape.rate
        doc["load"]["duration"] = shape.duration
        return doc

    def write(self, shape: Shape, folder: Path, comment: str, name: str | None = None) -> Path:
        """`shape` as a scenario file in `folder` (named after the scenario, as the loader wants), checked
        by the loader; raises ScenarioError when the shape does not make a valid scenario."""
        folder.mkdir(parents=True, exist_ok=True)
        doc = self.document(shape, name)
        path = folder / f"{doc['name']}.yaml"
        header = "".join(f"# {line}\n" for line in comment.splitlines())
        path.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        load_scenario(path)
        return path


def _rerun_words(rerun: str, where: Path) -> tuple[Path, str, int, int | None, str | None, tuple[str, ...]]:
    words = shlex.split(rerun)
    if words[:2] != ["solar-chaos", "run"] or len(words) < 3:
        raise ShrinkError(f"{where}: rerun: {rerun!r} is not a `solar-chaos run FILE ...` command")
    file, rest = Path(words[2]), words[3:]
    param, seed, agents, soak = "", None, None, None
    sut: list[str] = []
    i = 0
    while i < len(rest):
        flag, value = rest[i], rest[i + 1] if i + 1 < len(rest) else ""
        if flag == "--param":
            param = value
        elif flag == "--seed":
            seed = int(value)
        elif flag == "--agents":
            agents = int(value)
        elif flag == "--soak-duration":
            soak = value
        elif flag in ("--sut-image", "--buggify", "--load-workers", "--sut", "--hosts"):
            sut += [flag, value]
        else:
            raise ShrinkError(f"{where}: rerun: unknown word {flag!r} in {rerun!r}")
        i += 2
    if seed is None:
        raise ShrinkError(f"{where}: rerun: no --seed in {rerun!r}")
    return file, param, seed, agents, soak, tuple(sut)


def read_origin(run_dir: Path) -> Origin:
    """The failing run in `run_dir`: its scenario.json's `rerun` names the file, the parameter set, the
    seed and the system; its verdict.json the failure to keep; its history.jsonl the faults it started,
    which must be the ones the file plans today (else the file changed since the run)."""
    meta_path = run_dir / store.SCENARIO
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise ShrinkError(f"{meta_path}: cannot read it: {e}") from e
    rerun = meta.get("rerun") if isinstance(meta, dict) else None
    if not isinstance(rerun, str):
        raise ShrinkError(f"{meta_path}: rerun: missing; the run's command is needed to run it again")
    file, param, seed, agents, soak, sut = _rerun_words(rerun, meta_path)
    path = file if file.is_absolute() else ROOT / file
    overrides = {"topology.agents": agents} if agents else None
    try:
        sets = dict(load_scenarios(path, overrides, soak_duration=soak))
    except ScenarioError as e:
        raise ShrinkError(f"{path}: {e}") from e
    if param not in sets:
        raise ShrinkError(
            f"{meta_path}: rerun: parameter set {param!r} is not in {path}; allowed: {sorted(sets)}"
        )
    kinds = _failure_kinds(run_dir)
    origin = Origin(run_dir, path, param, seed, sut, kinds, sets[param])
    _same_faults(origin)
    return origin


def _failure_kinds(run_dir: Path) -> frozenset[str]:
    path = run_dir / store.VERDICT
    try:
        verdict = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShrinkError(f"{path}: cannot read it ({e}); run `solar-chaos check {run_dir}` first") from e
    if not isinstance(verdict, dict) or verdict.get("valid") is not False:
        raise ShrinkError(
            f"{path}: valid: {verdict.get('valid') if isinstance(verdict, dict) else verdict!r}; "
            "allowed: a run whose verdict is invalid (false), with anomalies"
        )
    kinds = frozenset(a.get("kind") for a in verdict.get("anomalies", []) if isinstance(a, dict))
    kinds = frozenset(k for k in kinds if isinstance(k, str))
    if not kinds:
        raise ShrinkError(f"{path}: anomalies: none listed; allowed: an invalid verdict with its anomalies")
    return kinds


def _same_faults(origin: Origin) -> None:
    planned = {s.fault_id: s for s in plan(origin.scenario, origin.seed) if s.action == "start"}
    try:
        started = Run(origin.run_dir).history.faults
    except RunDirError as e:
        raise ShrinkError(str(e)) from e
    for fault_id, kind, scheduled in ((f.fault_id, f.kind, f.scheduled) for f in started):
        step = planned.get(fault_id)
        if (
            step is None
            or step.fault.fault != kind
            or (scheduled is not None and abs(step.at - scheduled) > 1e-6)
        ):
            now = "nothing" if step is None else f"a {step.fault.fault} at {step.at:g}s"
            raise ShrinkError(
                f"{origin.run_dir / store.HISTORY}: fault {fault_id} started a {kind} at {scheduled}s, but "
                f"{origin.file} at seed {origin.seed} plans {now}: the file changed since the run; allowed: "
                "the scenario file as it was run"
            )
