"""JSON from a file the harness did not write (scenario.json, verdict.json of a run directory), held
to what the format can mean: nested at most MAX_DEPTH deep, every number finite and every integer
within 64 bits, or Unusable naming the field (`budgets.intent_ms: got inf`). Such a value would
otherwise reach a checker's arithmetic (OverflowError), a reader's recursion (RecursionError), or a
verdict as NaN. store.read_json names the file."""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Iterator
from typing import Any


class Unusable(ValueError):
    """What is wrong (naming the field where there is one), its line when known, what is allowed."""

    def __init__(self, what: str, line: int | None = None, expected: str = "") -> None:
        super().__init__(what)
        self.what, self.line, self.expected = what, line, expected


def loads(data: bytes) -> Any:
    """The value of `data`, once usable (see the module's doc)."""
    with _collector_paused():
        value = _parse(data)
        _usable(value)
    return value


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing makes containers, none in a cycle: the collector's passes over millions of them (half
    the time of a 16 MiB file of small objects) would find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(data: bytes) -> Any:
    try:
        try:
            value = json.loads(data)
        except ValueError as e:
            if isinstance(e, json.JSONDecodeError | UnicodeDecodeError):
                raise
            # An integer past what Python converts: again, keeping such integers as their digits so
            # that _usable can name the field (not the first time: a hook per integer costs 4x).
            value = json.loads(data, parse_int=_parse_int)
    except UnicodeDecodeError:
        raise Unusable("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise Unusable(f"not JSON: {e.msg} (column {e.colno})", e.lineno) from None
    except RecursionError:
        key, line, column = _too_deep(data)
        where = f"{key}: " if key is not None else ""
        raise Unusable(f"{where}nested deeper than {MAX_DEPTH} levels (column {column})", line) from None
    except ValueError as e:
        raise Unusable(f"not usable JSON: {e}") from None
    return value


# Deeper than any file of the format nests (scenario.json: five levels); what is deeper is refused
# before a reader's recursion meets it.
MAX_DEPTH = 64
INT_LIMIT = 1 << 64  # the format's integers are 64-bit (seeds, seqs, byte counts)


class _LongInt(str):
    """An integer literal too long to be one of the format's: kept as its digits, never converted
    (converting thousands of digits is slow, and past 4300 Python refuses)."""


def _parse_int(digits: str) -> int | _LongInt:
    return int(digits) if len(digits) <= 24 else _LongInt(digits)


def _usable(value: Any) -> None:
    """Refuse a number no checker can compute with, or nesting past MAX_DEPTH, naming its field.
    Level by level, so neither recursion (the value may be nested as deep as the parser allowed) nor
    an object per value: a 16 MiB file is walked in about a second. The field's name is searched for
    only once something is refused."""
    level, depth = [value], 1
    while level:
        if depth > MAX_DEPTH:
            raise Unusable(
                f"{_field(value, level[0], top_only=True)}: nested deeper than {MAX_DEPTH} levels",
                expected="the format's fields (docs/run-format.md)",
            )
        deeper = []
        for item in level:
            for v in item.values() if type(item) is dict else item:
                kind = type(v)
                if kind is dict or kind is list:
                    deeper.append(v)
                elif kind is float:
                    if v - v != 0:  # NaN and the infinities (NaN, Infinity, 1e999 in the file)
                        raise Unusable(
                            f"{_field(value, v)}: got {v}",
                            expected="a finite number (NaN, Infinity and numbers past 1.8e308 are none)",
                        )
                elif (kind is int and not -INT_LIMIT < v < INT_LIMIT) or kind is _LongInt:
                    digits = str(v).lstrip("-")
                    got = v if len(digits) <= 24 else f"an integer of {len(digits)} digits"
                    raise Unusable(f"{_field(value, v)}: got {got}", expected="an integer within 64 bits")
        level, depth = deeper, depth + 1


def _field(root: Any, target: Any, top_only: bool = False) -> str:
    """Where `target` (this very object) sits in `root`: `budgets.intent_ms`, `faults[2].at`, as
    docs/run-format.md names fields; only its top-level key with `top_only`."""
    todo: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    keys: tuple[Any, ...] = ()
    while todo:
        item, where = todo.pop()
        for key, v in item.items() if type(item) is dict else enumerate(item):
            if v is target:
                todo, keys = [], (*where, key)
                break
            if type(v) is dict or type(v) is list:
                todo.append((v, (*where, key)))
    out = ""
    for key in keys[:1] if top_only else keys:
        out += f"[{key}]" if isinstance(key, int) else f".{key}" if out else str(key)
    return out or "the document"


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"(\s*:)?|[\[\]{}]')


def _too_deep(data: bytes) -> tuple[str | None, int, int]:
    """Where `data` first nests past MAX_DEPTH: the top-level key it is under, its line and column."""
    depth, key, at = 0, None, 0
    for m in _TOKEN.finditer(data):
        token = m.group()
        if token[:1] == b'"':
            if depth == 1 and m.group(1):
                key = token[: token.rindex(b'"') + 1].decode("utf-8", "replace")[1:-1]
            continue
        depth += 1 if token in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            at = m.start()
            break
    line = data.count(b"\n", 0, at) + 1
    return key, line, at - (data.rfind(b"\n", 0, at) + 1) + 1
