"""Text from a run directory or a system under test, made safe to print: whatever it holds reaches the
terminal as visible characters, never as a command to it (an ESC sequence in a cid could move the
cursor and erase the INVALID line above it; a bidi override could make a cid read backwards)."""

from __future__ import annotations

import unicodedata
from typing import Any

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
