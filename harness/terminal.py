"""Text from a run directory or a system under test, made safe to print: whatever it holds reaches the
terminal as visible characters, never as a command to it (an ESC sequence in a cid could move the
cursor and erase the INVALID line above it; a bidi override could make a cid read backwards)."""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import Any

from harness.errors import HarnessError

DEBUG_HINT = "SOLAR_CHAOS_DEBUG=1 shows where"

# Categories a terminal acts on or hides: controls (C0, DEL, C1), format characters (bidi overrides and
# isolates, zero-width ones), line and paragraph separators, and lone surrogates (which no encoder
# writes: printing one would raise).
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _escape(ch: str) -> str:
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def safe(value: Any) -> str:
    """`value` as text with every character a terminal would act on written as its escape, as Python's
    repr writes it (`\\x1b`, `\\u202e`, `\\udfff`); everything else, other scripts too, as it is."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case, without a look at each character
    out = []
    for ch in text:
        if (ch < " " or "\x7f" <= ch <= "\x9f") or (ch > "\x7f" and unicodedata.category(ch) in _HIDDEN):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def debug() -> bool:
    """SOLAR_CHAOS_DEBUG=1: an unexpected error shows its traceback instead of one line."""
    return os.environ.get("SOLAR_CHAOS_DEBUG", "") not in ("", "0")


def say_error(error: object) -> str:
    """`solar-chaos: <error>` on stderr, escaped: an error names paths and quotes data. Returns the
    error's text, unescaped."""
    text = str(error) if isinstance(error, HarnessError | str) else _oserror(error)
    print(f"solar-chaos: {safe(text)}", file=sys.stderr, flush=True)
    return text


def _oserror(error: object) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"
