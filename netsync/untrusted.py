"""Reading what comes from outside the process (an HTTP body, a peer's frame, a stream message):
every way JSON can be unreadable is a ValueError, and text is checked before anything writes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def loads(data: bytes | str, parse_int: Callable[[str], Any] | None = None) -> Any:
    """json.loads, with deep nesting a ValueError too: some 65,000 `[` fit in 64 KiB and made the
    parser raise RecursionError, which no `except ValueError` caught."""
    try:
        return json.loads(data, parse_int=parse_int)
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
