"""The run directory (docs/run-format.md), Jepsen's store: its file names, and the readers and
writers of its files. Every reading error names the file and the line, and says what was expected."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import msgspec

from harness import json_limits
from harness.errors import HarnessError

SCENARIO = "scenario.json"
HISTORY = "history.jsonl"
STREAM = "stream.jsonl"
STORE = "store.jsonl"
SAMPLES = "samples.jsonl"
ANALYTICS = "analytics.jsonl"  # optional: the changes the analytics consumer applied, its view, its gaps
TELEMETRY = "telemetry.jsonl"  # optional: the scout's summaries, when the system publishes them
VERDICT = "verdict.json"
REPORT = "report.html"
INDEX = "index.html"  # a run folder's: one row per scenario
TIMINGS = "timings.json"  # beside the format's files: how long each phase took
LOGS = "logs"  # beside the format's files: every container's log

# What the harness writes into a run directory or a run folder: never through a link planted at the name.
OUTPUTS = (VERDICT, REPORT, INDEX)

# The files a run directory must hold for `check`: samples may be empty, never absent.
REQUIRED = (SCENARIO, HISTORY, STREAM, STORE, SAMPLES)

T = TypeVar("T")


# A stream sequence as the format holds it: JetStream numbers a stream's messages from 1, and the
# checkers' columns and the store are 64-bit. One definition for the load, the collection and the judge.
MAX_SEQ = (1 << 63) - 1
SEQ_RANGE = "an integer from 1 (JetStream numbers from 1) to 2^63-1"


def valid_seq(value: Any) -> bool:
    """A stream seq as JetStream gives it (a JSON `true` is not 1)."""
    return type(value) is int and 1 <= value <= MAX_SEQ


class RunDirError(HarnessError):
    """A run directory, or one of its files, is missing or malformed: `FILE:LINE: what; expected ...`."""

    def __init__(self, path: Path | str, what: str, line: int | None = None, expected: str = "") -> None:
        self.path = Path(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}" + (f"; expected {expected}" if expected else ""))


def is_run_dir(path: Path) -> bool:
    """A scenario's run directory (it holds scenario.json), as opposed to a run folder of several.
    A scenario.json of any kind counts: one that is a FIFO, a device or a dangling link is refused,
    named, when it is read, instead of its folder being passed over in silence."""
    return os.path.lexists(Path(path) / SCENARIO)


# A line longer than this is not a line of the format: a history linked to a file with no newline
# (or /dev/zero) must end in an error naming it, not in memory growing without bound.
MAX_LINE_BYTES = 1 << 20
# scenario.json and verdict.json are small; one that is not is not the format's.
MAX_JSON_BYTES = 16 << 20


def open_regular(path: Path, expected: str) -> BinaryIO:
    """Open `path` for reading only when it is a regular file (a link is followed to one): a FIFO
    would hang the reader, a device would feed it without end. Opened non-blocking, so a FIFO is
    refused instead of waited on, then checked with fstat."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RunDirError(path, "missing", expected=expected) from None
    except OSError as e:
        raise RunDirError(path, f"cannot read: {e.strerror or e}", expected=expected) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RunDirError(path, f"not a regular file ({_file_kind(mode)})", expected=expected)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=1 << 20)
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def is_regular(path: Path) -> bool:
    """A regular file, or a link to one (what the readers accept)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def regular_files(folder: Path, pattern: str, expected: str) -> list[Path]:
    """The entries of `folder` matching `pattern`, sorted, once each is known to be a regular file
    (or a link to one): else a RunDirError naming the first that is not."""
    out = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            raise RunDirError(path, f"cannot read: {e.strerror or e}", expected=expected) from None
        if not stat.S_ISREG(mode):
            raise RunDirError(path, f"not a regular file ({_file_kind(mode)})", expected=expected)
        out.append(path)
    return out


def read_json(path: Path, expected: str = "a JSON object") -> dict[str, Any]:
    """A JSON object from a file of at most MAX_JSON_BYTES, every number in it one a checker can use
    (finite, integers within 64 bits) and nested at most json_limits.MAX_DEPTH deep: else a RunDirError naming
    the field."""
    with open_regular(path, expected) as f:
        try:
            data = f.read(MAX_JSON_BYTES + 1)
        except OSError as e:
            raise RunDirError(path, f"cannot read: {e.strerror or e}") from None
    if len(data) > MAX_JSON_BYTES:
        raise RunDirError(path, f"larger than {MAX_JSON_BYTES >> 20} MiB", expected=expected)
    try:
        value = json_limits.loads(data)
    except json_limits.Unusable as e:
        raise RunDirError(path, e.what, e.line, e.expected or expected) from None
    if not isinstance(value, dict):
        raise RunDirError(path, f"got a JSON {type(value).__name__}", 1, expected)
    return value


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-blank line, read in large blocks; a line past
    MAX_LINE_BYTES raises RunDirError naming it."""
    with open_regular(path, "JSON lines (docs/run-format.md)") as f:
        number = 0
        while True:
            try:
                line = f.readline(MAX_LINE_BYTES + 1)
            except OSError as e:
                raise RunDirError(path, f"cannot read: {e.strerror or e}", number + 1) from None
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise RunDirError(
                    path,
                    f"a line longer than {MAX_LINE_BYTES} bytes",
                    number,
                    "JSON lines (docs/run-format.md)",
                )
            if line.strip():
                yield number, line


def log_lines(path: Path) -> Iterator[bytes]:
    """Each line of a container's log (logs/, not a file of the format), read only from a regular file;
    a line past MAX_LINE_BYTES is cut there and the rest of it skipped, so a log of one endless line
    is read in bounded memory, and what it says before the cut is kept."""
    with open_regular(path, "a container's log, a regular file") as f:
        try:
            while line := f.readline(MAX_LINE_BYTES + 1):
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    while (rest := f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                        pass
                    line = line[:MAX_LINE_BYTES]
                yield line
        except OSError as e:
            raise RunDirError(path, f"cannot read: {e.strerror or e}") from None


def decode_line(path: Path, number: int, line: bytes, decode: Callable[[bytes], T], expected: str) -> T:
    """One line through `decode`; a line it refuses raises RunDirError naming the file and line."""
    try:
        return decode(line)
    except (msgspec.DecodeError, ValueError) as e:
        raise RunDirError(path, _describe(e, line), number, expected) from None
    except RecursionError:
        raise RunDirError(path, "nested too deeply to read", number, expected) from None


_any = msgspec.json.Decoder()
_WRONG_TYPE = re.compile(r"Expected `([^`]*)`, got `([^`]*)`(?: - at `\$\.?([^`]*)`)?")
_MISSING = re.compile(r"Object missing required field `([^`]*)`")


def _describe(error: Exception, line: bytes) -> str:
    """msgspec's complaint in the file's terms: which field, what it got, what it needed."""
    text = str(error)
    if "Number out of range" in text:
        return "a number past what a 64-bit float holds (1.8e308)"
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


class OutputError(RunDirError):
    """An output of the harness (verdict.json, report.html, index.html) cannot be written safely."""


def refuse_links(folder: Path, names: Iterable[str]) -> None:
    """Refuse a run directory where an output's name is a link or not a regular file: what the harness
    writes must never land where a link points."""
    for name in names:
        path = Path(folder) / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as e:
            raise OutputError(path, f"cannot inspect: {e.strerror or e}") from None
        if stat.S_ISLNK(mode):
            raise OutputError(
                path,
                "is a symbolic link; the harness writes its outputs only as new files",
                expected="no file, or a regular file, by that name (remove the link)",
            )
        if not stat.S_ISREG(mode):
            raise OutputError(
                path, f"is {_file_kind(mode)}", expected="no file, or a regular file, by that name"
            )


def write_output(path: Path, data: bytes | str) -> Path:
    """Write a whole file safely into a folder that may hold anything: refused when `path` is a link
    (or not a regular file); written under a fresh random name created with O_EXCL|O_NOFOLLOW, then
    renamed over `path` in the same folder (a rename replaces a link, never follows it). A harness
    killed meanwhile leaves the old file or none, never half of one."""
    path = Path(path)
    refuse_links(path.parent, [path.name])
    if isinstance(data, str):
        data = data.encode("utf-8", "backslashreplace")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    part = None
    try:
        for _ in range(16):
            part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
            try:
                fd = os.open(part, flags, 0o644)
                break
            except FileExistsError:
                continue
        else:
            raise OutputError(path, "no fresh temporary name beside it")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(part, path)
        part = None
    except OSError as e:
        raise OutputError(path, f"cannot write: {e.strerror or e}") from None
    finally:
        if part is not None:
            with contextlib.suppress(OSError):
                os.unlink(part)
    return path


def strict_json(data: Any, indent: int | None = 1) -> str:
    """JSON that any parser reads: NaN and infinities (which a system under test can send) become null;
    ASCII, so a control character or a lone surrogate in a cid is an escape, also when printed."""
    return json.dumps(_finite(data), indent=indent, allow_nan=False, ensure_ascii=True)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Whole or not at all, never through a link (write_output); strict JSON."""
    write_output(path, strict_json(data) + "\n")


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write the records, one compact JSON object a line; returns how many."""
    n = 0
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            n += 1
    return n
