"""Pydantic's validation errors in the file's terms: the path the user wrote, what is wrong there and what
is allowed."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from harness.scenario.faults import FAULTS
from harness.scenario.model import Scenario
from harness.scenario.types import Loc, shorten


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


def got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, int) and value.bit_length() > 200:  # repr of a huge int is slow, or refused
        return f"an integer of {value.bit_length()} bits"
    return shorten(repr(value), 60)


def fields(model: Any) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items()) if _is_model(model) else ""


_Explain = Callable[[ErrorDetails, type[BaseModel] | None, Any], tuple[str, str]]


def _unknown_field(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    key = str(err["loc"][-1])
    known = fields(model).split(", ")
    close = difflib.get_close_matches(key, known, n=1) if len(key) <= 100 else []
    shown = repr(key) if len(key) <= 40 else f"{key[:40]!r}... ({len(key):,} characters)"
    what = f"unknown field {shown}"
    return what + (f" (did you mean {close[0]!r}?)" if close else ""), fields(model)


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
        what = f"got {got(value)}: not {kind}"
        if isinstance(value, bool):
            what += " (true, false, yes and no are booleans in YAML)"
        elif isinstance(value, str) and kind != "text":
            what += " (it is text: drop the quotes)"
        limits = _range(model, err["loc"][-1]) if kind != "text" else ""
        return what, kind + (f", {limits}" if limits else "")

    return explain


def _out_of_range(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    msg = err["msg"].replace("Input should be", "should be")
    return f"got {got(err['input'])}: {msg}", _range(model, err["loc"][-1])


def _not_literal(err: ErrorDetails, model: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    expected = err.get("ctx", {}).get("expected", "")
    return f"got {got(err['input'])}", ", ".join(re.findall(r"'([^']*)'", expected)) or expected


_EXPLAIN: dict[str, _Explain] = {
    "scenario": lambda e, m, t: (e["msg"], e["ctx"]["allowed"]),
    "missing": lambda e, m, t: ("required, but missing", ""),
    "extra_forbidden": _unknown_field,
    "literal_error": _not_literal,
    "union_tag_invalid": lambda e, m, t: (f"unknown fault {e['ctx']['tag']!r}", ", ".join(FAULTS)),
    "union_tag_not_found": lambda e, m, t: ("required, but missing", ", ".join(FAULTS)),
    "model_type": lambda e, m, t: (f"got {got(e['input'])}, not a mapping", fields(t)),
    "dict_type": lambda e, m, t: (f"got {got(e['input'])}, not a mapping", ""),
    "list_type": lambda e, m, t: (f"got {got(e['input'])}, not a list", ""),
    "int_type": _not_a("an integer"),
    "int_from_float": _not_a("an integer"),
    "float_type": _not_a("a number"),
    "finite_number": _not_a("a finite number"),
    "string_type": _not_a("text"),
    "bool_type": _not_a("true or false"),
    "string_pattern_mismatch": lambda e, m, t: (
        f"got {got(e['input'])}",
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
    return f"got {got(err['input'])}: {msg}", ""


def explain(err: ErrorDetails) -> tuple[Loc, str, str]:
    """One pydantic error as (the path the user wrote, what is wrong, what is allowed)."""
    loc = tuple(err["loc"]) + tuple(err.get("ctx", {}).get("at", ()))
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += ("fault",)
    path, model, tp = _locate(loc)
    what, allowed = _explain(err, model, tp)
    return path, what, allowed
