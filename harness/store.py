"""The run directory (docs/run-format.md), Jepsen's store: its file names, and the readers and
writers of its files. Every reading error names the file and the line, and says what was expected."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from harness.errors import HarnessError

SCENARIO = "scenario.json"
HISTORY = "history.jsonl"
STREAM = "stream.jsonl"
STORE = "store.jsonl"
SAMPLES = "samples.jsonl"
VERDICT = "verdict.json"
REPORT = "report.html"
TIMINGS = "timings.json"  # beside the format's files: how long each phase took
LOGS = "logs"  # beside the format's files: every container's log

# The files a run directory must hold for `check`: samples may be empty, never absent.
REQUIRED = (SCENARIO, HISTORY, STREAM, STORE, SAMPLES)

T = TypeVar("T")


class RunDirError(HarnessError):
    """A run directory, or one of its files, is missing or malformed: `FILE:LINE: what; expected ...`."""

    def __init__(self, path: Path | str, what: str, line: int | None = None, expected: str = "") -> None:
        self.path = Path(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}" + (f"; expected {expected}" if expected else ""))


def is_run_dir(path: Path) -> bool:
    """A scenario's run directory (it holds scenario.json), as opposed to a run folder of several."""
    return (path / SCENARIO).is_file()


def read_json(path: Path, expected: str = "a JSON object") -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(path, "missing", expected=expected) from None
    except OSError as e:
        raise RunDirError(path, f"cannot read: {e.strerror or e}") from None
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        raise RunDirError(path, "not UTF-8 text", expected=expected) from None
    except json.JSONDecodeError as e:
        raise RunDirError(path, f"not JSON: {e.msg} (column {e.colno})", e.lineno, expected) from None
    if not isinstance(value, dict):
        raise RunDirError(path, f"got a JSON {type(value).__name__}", 1, expected)
    return value


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-blank line, read in large blocks."""
    try:
        f = open(path, "rb", buffering=1 << 20)
    except FileNotFoundError:
        raise RunDirError(path, "missing", expected="JSON lines (docs/run-format.md)") from None
    except OSError as e:
        raise RunDirError(path, f"cannot read: {e.strerror or e}") from None
    with f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield number, line


def decode_line(path: Path, number: int, line: bytes, decode: Callable[[bytes], T], expected: str) -> T:
    """One line through `decode`; a line it refuses raises RunDirError naming the file and line."""
    try:
        return decode(line)
    except (msgspec.DecodeError, ValueError) as e:
        raise RunDirError(path, _describe(e, line), number, expected) from None


_any = msgspec.json.Decoder()
_WRONG_TYPE = re.compile(r"Expected `([^`]*)`, got `([^`]*)`(?: - at `\$\.?([^`]*)`)?")
_MISSING = re.compile(r"Object missing required field `([^`]*)`")


def _describe(error: Exception, line: bytes) -> str:
    """msgspec's complaint in the file's terms: which field, what it got, what it needed."""
    text = str(error)
    try:
        _any.decode(line)
    except msgspec.DecodeError:
        return f"not JSON ({text})"
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if m := _WRONG_TYPE.search(text):
        expected, got, where = m.groups()
        return f"{where or 'the line'}: got {'a JSON ' + got if not where else got}, not {expected}"
    if m := _MISSING.search(text):
        return f"{m.group(1)}: missing"
    return text


def write_json(path: Path, data: Any) -> None:
    """Whole or not at all: written beside, then renamed over (a harness killed meanwhile leaves the
    old file or none, never half of one)."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(part, path)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write the records, one compact JSON object a line; returns how many."""
    n = 0
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            n += 1
    return n
