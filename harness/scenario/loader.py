"""Reading scenario files: YAML to the model, a matrix to its parameter sets, and every error turned into
`FILE:LINE: path: what; allowed: ...` in the file's own terms."""

from __future__ import annotations

import copy
import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.scenario.faults import FAULTS
from harness.scenario.model import MATRIX_KEYS, Scenario, _id_value, _set_path
from harness.scenario.types import Loc, ScenarioError

# Turning pydantic's errors into the file's terms


def _unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif (
            get_origin(tp) in (Union, UnionType)
            and len(args := [a for a in get_args(tp) if a is not NoneType]) == 1
        ):
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _locate(loc: Loc) -> tuple[Loc, type[BaseModel] | None, Any]:
    """Pydantic's location as the path the user wrote (union tags dropped), the model whose field the last
    part names, and the type found there."""
    path: list[str | int] = []
    tp: Any = Scenario
    model: type[BaseModel] | None = None
    for part in loc:
        if part == "[key]":  # the error is about a mapping's key, which the path already ends with
            continue
        tp, model = _unwrap(tp), None
        if _is_model(tp):
            model = tp
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            tp = field.annotation if field else None
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        elif get_origin(tp) in (Union, UnionType) and isinstance(part, str) and part in FAULTS:
            tp = FAULTS[part]
            continue
        else:
            tp = None
        path.append(part)
    return tuple(path), model, _unwrap(tp)


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields(model: Any) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items()) if _is_model(model) else ""


def _unknown_field(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    key = str(err["loc"][-1])
    known = _fields(model).split(", ")
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""), _fields(model)


def _not_literal(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    expected = err.get("ctx", {}).get("expected", "")
    return f"got {_got(err['input'])}", ", ".join(re.findall(r"'([^']*)'", expected)) or expected


_Explain = Callable[[ErrorDetails, type[BaseModel] | None, Any], tuple[str, str]]
_EXPLAIN: dict[str, _Explain] = {
    "scenario": lambda e, m, t: (e["msg"], e["ctx"]["allowed"]),
    "missing": lambda e, m, t: ("required, but missing", ""),
    "extra_forbidden": _unknown_field,
    "literal_error": _not_literal,
    "union_tag_invalid": lambda e, m, t: (f"unknown fault {e['ctx']['tag']!r}", ", ".join(FAULTS)),
    "union_tag_not_found": lambda e, m, t: ("required, but missing", ", ".join(FAULTS)),
    "model_type": lambda e, m, t: (f"got {_got(e['input'])}, not a mapping", _fields(t)),
    "dict_type": lambda e, m, t: (f"got {_got(e['input'])}, not a mapping", ""),
    "list_type": lambda e, m, t: (f"got {_got(e['input'])}, not a list", ""),
}


def _explain(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    if explain := _EXPLAIN.get(err["type"]):
        return explain(err, model, tp)
    msg = err["msg"].replace("Input should", "should")
    return f"got {_got(err['input'])}: {msg}", ""


# Reading files

_Value = tuple[Any, yaml.Node | None]  # a substituted value and the YAML node it came from, if any


def _parse(text: str, file: str) -> tuple[yaml.Node, dict[str, Any]]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            if duplicates := list(_duplicate_keys(root, file)):
                raise ScenarioError(duplicates)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        context = ""
        if e.problem and e.context and e.context_mark:  # where the construct that broke started
            context = f" ({e.context} at line {e.context_mark.line + 1})"
        raise ScenarioError(f"{file}{line}: not valid YAML: {e.problem or e.context}{context}") from e
    except yaml.YAMLError as e:
        raise ScenarioError(f"{file}: not valid YAML: {e}") from e
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ScenarioError(f"{file}:{line}: got {_got(data)}, not a mapping; allowed: {_fields(Scenario)}")
    return root, data


def _duplicate_keys(
    node: yaml.Node, file: str, path: Loc = (), seen: set[int] | None = None
) -> Iterator[str]:
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias met again
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in first and key.tag != "tag:yaml.org,2002:merge":
                where = ".".join(map(str, (*path, name)))
                first_at = f"first at line {first[name]}"
                yield f"{file}:{line}: {where}: duplicate key ({first_at}); allowed: each key once"
            first.setdefault(name, line)
            yield from _duplicate_keys(value, file, (*path, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, file, (*path, i), seen)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node whose line to report, the node to descend into) for one step of a path, or None."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


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
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ScenarioError(f"{self.file}: not UTF-8 text") from None
        except OSError as e:
            raise ScenarioError(f"{self.file}: cannot read: {e.strerror or e}") from None
        self.root, self.data = _parse(text, self.file)

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
                    (0, f"{self.file}: {key}: no place to set {_got(value)}; allowed: {MATRIX_KEYS}")
                )
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
        if problems:
            raise ScenarioError(message for _line, message in sorted(problems, key=lambda p: p[0]))
        scenario._parameters = {key: value for key, (value, _node) in values.items()}
        return scenario

    def parameter_sets(self, matrix: dict[str, list[Any]]) -> Iterator[tuple[str, dict[str, _Value]]]:
        keys = list(matrix)
        labels = _labels(keys)
        nodes = {key: self._matrix_nodes(key, len(matrix[key])) for key in keys}
        for choice in itertools.product(*(range(len(matrix[key])) for key in keys)):
            values = {key: (matrix[key][i], nodes[key][i]) for key, i in zip(keys, choice, strict=True)}
            yield ",".join(f"{labels[key]}={_id_value(value)}" for key, (value, _n) in values.items()), values

    def _matrix_nodes(self, key: str, count: int) -> list[yaml.Node | None]:
        found = _child(self.root, "matrix")
        found = found and _child(found[1], key)
        if found and isinstance(found[1], yaml.SequenceNode):
            return list(found[1].value)
        return [None] * count

    def _from_pydantic(
        self, err: ErrorDetails, values: Mapping[str, _Value], parameter_set: str | None
    ) -> tuple[int, str]:
        loc = tuple(err["loc"]) + tuple(err.get("ctx", {}).get("at", ()))
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += ("fault",)
        path, model, tp = _locate(loc)
        what, allowed = _explain(err, model, tp)
        if parameter_set:
            what += f" (in parameter set {parameter_set})"
        return self._message(path, what, allowed, values)

    def _message(self, path: Loc, what: str, allowed: str, values: Mapping[str, _Value]) -> tuple[int, str]:
        line = self._line(path, values)
        where = f"{self.file}:{line}" if line is not None else f"{self.file} (overridden)"
        shown = ".".join(map(str, path)) or "(top level)"
        return line or 0, f"{where}: {shown}: {what}" + (f"; allowed: {allowed}" if allowed else "")

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
            step = _child(node, part) if node is not None else None
            if step is None:  # not in the file; a deeper part may still be a value set from outside
                node = None
                continue
            anchor, node = step
        return anchor.start_mark.line + 1


def _as_values(overrides: Mapping[str, Any] | None) -> dict[str, _Value]:
    return {key: (value, None) for key, value in (overrides or {}).items()}


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """The scenario in a file, as written (a matrix stays unexpanded), with `overrides` (dotted path ->
    value, e.g. {"topology.agents": 5}) applied. Raises ScenarioError."""
    return _Source(path).validate(_as_values(overrides))


SOAK = "soak"  # the marker of a soak scenario: --soak-duration sets its load's duration


def load_scenarios(
    path: str | Path, overrides: Mapping[str, Any] | None = None, soak_duration: str | float | None = None
) -> list[tuple[str, Scenario]]:
    """Every parameter set of a file as (id, scenario): one per combination of its matrix's values, with
    ids such as `mode=refuse`; a file without a matrix gives one, with the id "". `soak_duration` (e.g.
    "30m") replaces `load.duration` of a scenario marked `soak`, and leaves the others as written (its
    random faults run until the new end unless the file bounds them). Raises ScenarioError."""
    source = _Source(path)
    extra = _as_values(overrides)
    base = source.validate(extra)
    if soak_duration is not None and SOAK in base.markers:
        extra = {**extra, **_as_values({"load.duration": soak_duration})}
        base = source.validate(extra)
    if not base.matrix:
        return [("", base)]
    sets: list[tuple[str, Scenario]] = []
    problems: list[str] = []
    for ident, values in source.parameter_sets(base.matrix):
        try:
            sets.append((ident, source.validate({**values, **extra}, ident)))
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
    problems: list[str] = []
    for path in _scenario_files(paths):
        try:
            load_scenarios(path)
        except ScenarioError as e:
            problems.extend(e.problems)
    return problems
