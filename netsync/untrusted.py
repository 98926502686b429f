"""Reading what comes from outside the process (an HTTP body, a peer's frame, a stream message):
every way JSON can be unreadable is a ValueError, and text is checked before anything writes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str, parse_int: Callable[[str], Any] | None = None) -> Any:
    """JSON as RFC 8259 has it (docs/contract.md: "UTF-8 JSON"), every failure a ValueError: bytes are
    UTF-8 (a leading BOM ignored, as a WHATWG decoder does; json.loads would also take UTF-16 and
    UTF-32), `NaN`, `Infinity` and `-Infinity` are not JSON (json.loads takes them), and deep nesting
    (some 65,000 `[` fit in 64 KiB) is a ValueError rather than the parser's RecursionError."""
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8: {e}") from None
    try:
        return json.loads(data, parse_int=parse_int, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


def is_text(s: object) -> bool:
    """A str that UTF-8 can encode. JSON's `\\ud800` escape decodes to a lone surrogate, which
    passes every length rule and then fails each writer downstream (CBOR to SurrealDB, say)."""
    if not isinstance(s, str):
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
