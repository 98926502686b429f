"""Reading scenario files: YAML to the model, a matrix to its parameter sets, and every error turned into
`FILE:LINE: path: what; allowed: ...` in the file's own terms."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from harness.scenario.dotted import _set_path
from harness.scenario.explain import explain, fields, got
from harness.scenario.model import MATRIX_KEYS, Scenario, _id_value
from harness.scenario.types import (
    MAX_EXPANDED_NODES,
    MAX_FILE_PLANNED_FAULTS,
    Loc,
    ScenarioError,
    shorten,
)
from harness.scenario.yaml_source import child, read, shown_path

_Value = tuple[Any, yaml.Node | None]  # a substituted value and the YAML node it came from, if any


def _labels(keys: list[str]) -> dict[str, str]:
    """`mode` for `faults.0.mode`, unless two keys end alike or the end is an index."""
    ends = [key.rsplit(".", 1)[-1] for key in keys]
    return {
        key: key if end.isdigit() or ends.count(end) > 1 else end for key, end in zip(keys, ends, strict=True)
    }


class _Source:
    """A scenario file as parsed: its plain data and the YAML nodes that know their lines."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = str(path)
        self.root, data, self.nodes = read(self.path, self.file)
        if not isinstance(data, dict):
            line = self.root.start_mark.line + 1 if self.root is not None else 1
            what = f"got {got(data)}, not a mapping"
            raise ScenarioError(f"{self.file}:{line}: {what}; allowed: {fields(Scenario)}")
        self.data: dict[str, Any] = data
        self.planned = 0  # faults planned so far, over the parameter sets
        self.origins: dict[str, str] = {}  # dotted key of an override -> where it came from, e.g. --hosts F

    def validate(self, values: Mapping[str, _Value], parameter_set: str | None = None) -> Scenario:
        """The scenario with `values` set at their dotted paths; a parameter set drops the matrix."""
        data = copy.deepcopy(self.data)
        if parameter_set is not None:
            data.pop("matrix", None)
        problems: list[tuple[int, str]] = []  # (line, message), to report in the file's order
        for key, (value, _node) in values.items():
            try:
                _set_path(data, key.split("."), value)
            except (LookupError, ValueError, TypeError, AttributeError):
                problems.append(
                    (0, f"{self.file}: {key}: no place to set {got(value)}; allowed: {MATRIX_KEYS}")
                )
        known = data.get("expected_failures")
        if parameter_set is None and not data.get("matrix") and isinstance(known, list):
            for i, entry in enumerate(known):
                if isinstance(entry, dict) and entry.get("when"):
                    what = "`when` names matrix keys, and the file has no matrix"
                    at = ("expected_failures", i, "when")
                    problems.append(self._message(at, what, "no `when` (every run), or a matrix", {}))
        name = data.get("name")
        if isinstance(name, str) and name != self.path.stem:
            what = f"{name!r} is not the file's name {self.path.stem!r}"
            problems.append(self._message(("name",), what, self.path.stem, {}))
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError as e:
            problems += [
                self._from_pydantic(err, values, parameter_set) for err in e.errors(include_url=False)
            ]
        else:
            problems += self._plan_problems(scenario, values, parameter_set)
        if problems:
            raise ScenarioError(message for _line, message in sorted(problems, key=lambda p: p[0]))
        scenario._parameters = {key: value for key, (value, _node) in values.items()}
        return scenario

    def _plan_problems(
        self, scenario: Scenario, values: Mapping[str, _Value], parameter_set: str | None
    ) -> list[tuple[int, str]]:
        """Plan the schedule as a run would (with the file's seed; a seed changes which faults, never
        whether or how many), so that a file `validate` passes never fails to plan."""
        from harness import schedule  # schedule reads the model: imported here, not at the top

        if scenario.matrix:  # judged once per parameter set
            return []
        ps = f" (in parameter set {shorten(parameter_set, 100)})" if parameter_set else ""
        self.planned += schedule.planned(scenario)
        if self.planned > MAX_FILE_PLANNED_FAULTS:
            what = f"its parameter sets plan more than {MAX_FILE_PLANNED_FAULTS:,} faults together{ps}"
            allowed = f"at most {MAX_FILE_PLANNED_FAULTS:,} faults over all parameter sets"
            raise _Exhausted([self._message(("matrix",), what, allowed, {})[1]])
        found = [
            self._message(path, what + ps, allowed, values)
            for path, what, allowed in schedule.problems(scenario)
        ]
        if not found:
            try:
                schedule.plan(scenario, scenario.seed or 0)
            except (ScenarioError, ValidationError) as e:
                found.append(
                    self._message(("random",), f"cannot be planned: {shorten(str(e), 300)}{ps}", "", values)
                )
        return found

    def parameter_sets(self, matrix: dict[str, list[Any]]) -> Iterator[tuple[str, dict[str, _Value]]]:
        keys = list(matrix)
        labels = _labels(keys)
        nodes = {key: self._matrix_nodes(key, len(matrix[key])) for key in keys}
        for choice in itertools.product(*(range(len(matrix[key])) for key in keys)):
            values = {key: (matrix[key][i], nodes[key][i]) for key, i in zip(keys, choice, strict=True)}
            yield ",".join(f"{labels[key]}={_id_value(value)}" for key, (value, _n) in values.items()), values

    def _matrix_nodes(self, key: str, count: int) -> list[yaml.Node | None]:
        found = child(self.root, "matrix")
        found = found and child(found[1], key)
        if found and isinstance(found[1], yaml.SequenceNode):
            return list(found[1].value)
        return [None] * count

    def _from_pydantic(
        self, err: ErrorDetails, values: Mapping[str, _Value], parameter_set: str | None
    ) -> tuple[int, str]:
        path, what, allowed = explain(err)
        if parameter_set:
            what += f" (in parameter set {shorten(parameter_set, 100)})"
        return self._message(path, what, allowed, values)

    def _message(self, path: Loc, what: str, allowed: str, values: Mapping[str, _Value]) -> tuple[int, str]:
        line = self._line(path, values)
        where = f"{self.file}:{line}" if line is not None else self._outside(path)
        shown = shown_path(path)
        return line or 0, f"{where}: {shown}: {what}" + (f"; allowed: {allowed}" if allowed else "")

    def _outside(self, path: Loc) -> str:
        """Where a value set from outside the file came from: `FILE (topology.hosts from --hosts H)`."""
        key = ".".join(map(str, path))
        for k, origin in self.origins.items():
            if key == k or key.startswith(k + "."):
                return f"{self.file} ({k} from {origin})"
        return f"{self.file} (overridden)"

    def _line(self, path: Loc, values: Mapping[str, _Value]) -> int | None:
        """The line of the deepest node of `path` present in the file; None for a value set from outside."""
        node: yaml.Node | None = self.root
        anchor = self.root
        for depth, part in enumerate(path):
            key = ".".join(map(str, path[: depth + 1]))
            if key in values:
                node = values[key][1]
                if node is None:
                    return None
                anchor = node
                continue
            step = child(node, part) if node is not None else None
            if step is None:  # not in the file; a deeper part may still be a value set from outside
                node = None
                continue
            anchor, node = step
        return anchor.start_mark.line + 1


class _Exhausted(ScenarioError):
    """The parameter sets planned so far reach the file's limit: judge no more of them."""


def _as_values(overrides: Mapping[str, Any] | None) -> dict[str, _Value]:
    return {key: (value, None) for key, value in (overrides or {}).items()}


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """The scenario in a file, as written (a matrix stays unexpanded), with `overrides` (dotted path ->
    value, e.g. {"topology.agents": 5}) applied. Raises ScenarioError."""
    return _Source(path).validate(_as_values(overrides))


SOAK = "soak"  # the marker of a soak scenario: --soak-duration sets its load's duration


def load_scenarios(
    path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    soak_duration: str | float | None = None,
    origins: Mapping[str, str] | None = None,
) -> list[tuple[str, Scenario]]:
    """Every parameter set of a file as (id, scenario): one per combination of its matrix's values, with
    ids such as `mode=refuse`; a file without a matrix gives one, with the id "". `soak_duration` (e.g.
    "30m") replaces `load.duration` of a scenario marked `soak`, and leaves the others as written (its
    random faults run until the new end unless the file bounds them). `origins` says where an override
    came from, for its errors ({"topology.hosts": "--hosts hosts.yaml"}). Raises ScenarioError."""
    source = _Source(path)
    source.origins = dict(origins or {})
    extra = _as_values(overrides)
    base = source.validate(extra)
    if soak_duration is not None and SOAK in base.markers:
        extra = {**extra, **_as_values({"load.duration": soak_duration})}
        base = source.validate(extra)
    if not base.matrix:
        return [("", base)]
    if (work := base.parameter_set_count * source.nodes) > MAX_EXPANDED_NODES:
        what = (
            f"{base.parameter_set_count} parameter sets of {source.nodes:,} keys and values each: "
            f"{work:,} to check"
        )
        allowed = f"parameter sets times keys and values at most {MAX_EXPANDED_NODES:,}"
        raise ScenarioError(source._message(("matrix",), what, allowed, {})[1])
    sets: list[tuple[str, Scenario]] = []
    problems: list[str] = []
    for ident, values in source.parameter_sets(base.matrix):
        try:
            sets.append((ident, source.validate({**values, **extra}, ident)))
        except _Exhausted as e:
            problems += e.problems
            break
        except ScenarioError as e:
            problems += [p for p in e.problems if p not in problems]
    if problems:
        raise ScenarioError(problems)
    return sets


def _scenario_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        else:
            yield path


def validate_files(paths: Iterable[str | Path]) -> list[str]:
    """Every problem in the given scenario files (a folder stands for its *.yaml files); empty: all good."""
    return [problem for _path, problems in validate_each(paths) for problem in problems]


def validate_each(paths: Iterable[str | Path]) -> Iterator[tuple[Path, list[str]]]:
    """Each scenario file (a folder stands for its *.yaml files) with its problems; one file's problems,
    whatever they are, never keep the next file from being judged."""
    for path in _scenario_files(paths):
        try:
            load_scenarios(path)
        except ScenarioError as e:
            yield path, e.problems
        except Exception as e:  # a file the checks above missed: a bug here, still no traceback
            yield (
                path,
                [
                    f"{path}: could not be judged ({type(e).__name__}: {shorten(str(e), 200)}); "
                    "please report this file as a bug of solar-chaos validate"
                ],
            )
        else:
            yield path, []
