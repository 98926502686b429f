"""Reading scenario files: YAML to the model, a matrix to its parameter sets, and every error turned into
`FILE:LINE: path: what; allowed: ...` in the file's own terms."""

from __future__ import annotations

import copy
import difflib
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from harness.scenario.faults import FAULTS
from harness.scenario.model import MATRIX_KEYS, Scenario, _id_value, _set_path
from harness.scenario.types import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_FILE_BYTES,
    MAX_FILE_PLANNED_FAULTS,
    MAX_NODES,
    MAX_NUMBER_CHARS,
    MAX_TEXT_CHARS,
    Loc,
    ScenarioError,
    shorten,
)

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
    if isinstance(value, int) and value.bit_length() > 200:  # repr of a huge int is slow, or refused
        return f"an integer of {value.bit_length()} bits"
    return shorten(repr(value), 60)


def _fields(model: Any) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items()) if _is_model(model) else ""


_Explain = Callable[[ErrorDetails, type[BaseModel] | None, Any], tuple[str, str]]


def _unknown_field(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    key = str(err["loc"][-1])
    known = _fields(model).split(", ")
    close = difflib.get_close_matches(key, known, n=1) if len(key) <= 100 else []
    shown = repr(key) if len(key) <= 40 else f"{key[:40]!r}... ({len(key):,} characters)"
    what = f"unknown field {shown}"
    return what + (f" (did you mean {close[0]!r}?)" if close else ""), _fields(model)


def _range(model: type[BaseModel] | None, name: str | int) -> str:
    """The range a numeric field takes, e.g. `1..7`, `more than 0, at most 10000`, or ""."""
    field = model.model_fields.get(str(name)) if model is not None else None
    bounds: dict[str, Any] = {}
    for meta in field.metadata if field is not None else ():
        for bound in ("gt", "ge", "lt", "le"):
            if getattr(meta, bound, None) is not None:
                bounds[bound] = getattr(meta, bound)
    if "ge" in bounds and "le" in bounds:
        return f"{bounds['ge']}..{bounds['le']}"
    words = {"gt": "more than", "ge": "at least", "lt": "less than", "le": "at most"}
    return ", ".join(f"{words[bound]} {value}" for bound, value in bounds.items())


def _not_a(kind: str) -> _Explain:
    def explain(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
        value = err["input"]
        what = f"got {_got(value)}: not {kind}"
        if isinstance(value, bool):
            what += " (true, false, yes and no are booleans in YAML)"
        elif isinstance(value, str) and kind != "text":
            what += " (it is text: drop the quotes)"
        limits = _range(model, err["loc"][-1]) if kind != "text" else ""
        return what, kind + (f", {limits}" if limits else "")

    return explain


def _out_of_range(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    msg = err["msg"].replace("Input should be", "should be")
    return f"got {_got(err['input'])}: {msg}", _range(model, err["loc"][-1])


def _not_literal(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    expected = err.get("ctx", {}).get("expected", "")
    return f"got {_got(err['input'])}", ", ".join(re.findall(r"'([^']*)'", expected)) or expected


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
    "int_type": _not_a("an integer"),
    "int_from_float": _not_a("an integer"),
    "float_type": _not_a("a number"),
    "finite_number": _not_a("a finite number"),
    "string_type": _not_a("text"),
    "bool_type": _not_a("true or false"),
    "string_pattern_mismatch": lambda e, m, t: (
        f"got {_got(e['input'])}",
        f"text matching {e['ctx']['pattern']}" + (", e.g. soak" if e["loc"][0] == "markers" else ""),
    ),
    "greater_than": _out_of_range,
    "greater_than_equal": _out_of_range,
    "less_than": _out_of_range,
    "less_than_equal": _out_of_range,
}


def _explain(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    if explain := _EXPLAIN.get(err["type"]):
        return explain(err, model, tp)
    msg = err["msg"].replace("Input should", "should")
    return f"got {_got(err['input'])}: {msg}", ""


# Reading files

_Value = tuple[Any, yaml.Node | None]  # a substituted value and the YAML node it came from, if any


# libyaml when present: fast, and it parses (though not composes) without recursion, like PyYAML's parser
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)


def _shown_path(path: Iterable[str | int]) -> str:
    """`faults.0.mode`, each key cut short and a key with a line break or control character quoted, so
    that a problem stays one line."""
    parts = [str(part) for part in path]
    return ".".join(shorten(part if part.isprintable() else repr(part)) for part in parts) or "(top level)"


class _Frame:
    """An open mapping or list met by `_scan`: where it is, and how much it holds so far."""

    __slots__ = ("anchor", "children", "mapping", "part", "start")

    def __init__(self, mapping: bool, anchor: str | None, start: int) -> None:
        self.mapping, self.anchor, self.start = mapping, anchor, start
        self.children = 0
        self.part: str | int = ""


def _scan(text: str, file: str) -> int:
    """Refuse, from YAML's events and before anything is built from them, a file whose nesting, size once
    its aliases are expanded, or one key or value would make the rest take unbounded time or memory (YAML's
    composer recurses, an alias bomb expands exponentially, `int()` refuses 4,300 digits). Returns how
    many keys and values the file holds, aliases expanded."""
    resolver = yaml.resolver.Resolver()
    frames: list[_Frame] = []
    sizes: dict[str, int] = {}  # an anchor's keys and values; -1 while its own mapping or list is open
    total = 0

    def refuse(event: yaml.Event, what: str, allowed: str) -> ScenarioError:
        where = _shown_path(f.part for f in frames)
        return ScenarioError(f"{file}:{event.start_mark.line + 1}: {where}: {what}; allowed: {allowed}")

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionEndEvent):
            frame = frames.pop()
            if frame.anchor is not None:
                sizes[frame.anchor] = total - frame.start
            continue
        if not isinstance(event, _NODE_EVENTS):
            continue
        if frames:
            parent = frames[-1]
            if not parent.mapping:
                parent.part = parent.children
            elif parent.children % 2 == 0:  # a key: the path names it
                parent.part = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            parent.children += 1
        size = 1
        if isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor, 1)
            if size < 0:
                raise refuse(
                    event, f"alias *{shorten(event.anchor)} inside itself", "an alias after its anchor"
                )
        total += size
        if total > MAX_NODES:
            raise refuse(
                event,
                f"more than {MAX_NODES:,} keys and values (an alias counts all of its anchor's at each use)",
                f"at most {MAX_NODES:,} keys and values",
            )
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                raise refuse(event, f"nesting deeper than {MAX_DEPTH} levels", f"at most {MAX_DEPTH} levels")
            frames.append(_Frame(isinstance(event, yaml.MappingStartEvent), event.anchor, total - 1))
            if event.anchor is not None:
                sizes[event.anchor] = -1
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                sizes[event.anchor] = 1
            value = event.value
            if len(value) > MAX_TEXT_CHARS:
                what = f"a key or value of {len(value):,} characters"
                raise refuse(event, what, f"at most {MAX_TEXT_CHARS:,} characters")
            if len(value) > MAX_NUMBER_CHARS and (
                event.tag in _NUMBER_TAGS
                or (
                    event.implicit[0]
                    and resolver.resolve(yaml.ScalarNode, value, (True, False)) in _NUMBER_TAGS
                )
            ):
                what = f"a number of {len(value):,} characters"
                raise refuse(event, what, f"a number of at most {MAX_NUMBER_CHARS} characters")
    return total


def _unconstructable(root: yaml.Node, file: str, error: Exception) -> str:
    """The first value YAML cannot build (`!!int x`, `2001-13-45`), as a problem at its line."""
    constructor = yaml.constructor.SafeConstructor()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node)
            except Exception as e:
                where = _shown_path(path)
                line = node.start_mark.line + 1
                kind = node.tag.rsplit(":", 1)[-1]
                what = f"cannot read {shorten(repr(node.value))} as {kind}: {shorten(str(e), 100)}"
                return f"{file}:{line}: {where}: {what}; allowed: a value YAML reads as {kind}, or no tag"
        elif isinstance(node, yaml.MappingNode):
            stack += [
                (value, (*path, key.value if isinstance(key, yaml.ScalarNode) else "?"))
                for key, value in reversed(node.value)
            ]
            stack += [(key, path) for key, _value in reversed(node.value)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, i)) for i, item in reversed(list(enumerate(node.value)))]
    return f"{file}: not valid YAML: {shorten(str(error), 200)}"


def _parse(text: str, file: str) -> tuple[yaml.Node, dict[str, Any], int]:
    root: yaml.Node | None = None
    loader: Any = None
    try:
        nodes = _scan(text, file)
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is not None:
            if duplicates := list(_duplicate_keys(root, file)):
                raise ScenarioError(duplicates)
        try:
            data = loader.construct_document(root) if root is not None else None
        except (ValueError, TypeError, OverflowError, AttributeError) as e:  # a scalar its tag cannot build
            raise ScenarioError(_unconstructable(root, file, e)) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        context = ""
        if e.problem and e.context and e.context_mark:  # where the construct that broke started
            context = f" ({e.context} at line {e.context_mark.line + 1})"
        problem = shorten(str(e.problem or e.context), 200)
        allowed = f"; allowed: at most {MAX_DEPTH} levels" if "nesting depth" in problem else ""  # libyaml's
        raise ScenarioError(f"{file}{line}: not valid YAML: {problem}{context}{allowed}") from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, such as NUL
        line = text.count("\n", 0, e.position) + 1
        raise ScenarioError(
            f"{file}:{line}: not valid YAML: unacceptable character #x{e.character:04x}: {e.reason}; "
            "allowed: printable text"
        ) from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{file}: not valid YAML: {shorten(str(e), 200)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise ScenarioError(f"{file}:{line}: got {_got(data)}, not a mapping; allowed: {_fields(Scenario)}")
    return root, data, nodes


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
            if not stat.S_ISREG(self.path.stat().st_mode):  # a FIFO or a device would block or never end
                raise ScenarioError(f"{self.file}: not a regular file; allowed: a YAML file")
            with self.path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)  # never more: a 100 MB file is refused unread
                size = max(os.fstat(f.fileno()).st_size, len(raw))
        except OSError as e:
            raise ScenarioError(f"{self.file}: cannot read: {e.strerror or e}") from None
        if len(raw) > MAX_FILE_BYTES:
            shown = f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size:,} bytes"
            raise ScenarioError(
                f"{self.file}:1: (top level): the file has {shown}; allowed: at most {MAX_FILE_BYTES:,} bytes"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            raise ScenarioError(f"{self.file}:{line}: not UTF-8 text; allowed: UTF-8 text") from None
        self.root, self.data, self.nodes = _parse(text, self.file)
        self.planned = 0  # faults planned so far, over the parameter sets

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
            what += f" (in parameter set {shorten(parameter_set, 100)})"
        return self._message(path, what, allowed, values)

    def _message(self, path: Loc, what: str, allowed: str, values: Mapping[str, _Value]) -> tuple[int, str]:
        line = self._line(path, values)
        where = f"{self.file}:{line}" if line is not None else f"{self.file} (overridden)"
        shown = _shown_path(path)
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
