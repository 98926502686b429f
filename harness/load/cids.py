"""The cid each intent of the plan is sent with: `plain` (`<run-id>-s<seed>-000123`), or `edges`, at the
edges of docs/contract.md's cid rule (1 to 64 of [A-Za-z0-9._:-], the whole string): cids that follow it
at its limits, which the agent must take, and cids just off it, which it must refuse with 400."""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

RULE = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # the load's own statement of it, matched whole
RULE_CHARS = string.ascii_letters + string.digits + "._:-"
MAX_LEN = 64
STYLES = ("plain", "edges")

# What the edges mode sends, one of each per cycle of CYCLE intents, in this order: the pair's second
# half follows its first at once (one plan interval later, to the same agent), inside any duplicate
# window. `off` is why a kind breaks the rule (None: it follows it).
KINDS: tuple[tuple[str, str | None], ...] = (
    ("plain", None),
    ("max-length", None),  # exactly 64 characters
    ("punctuation", None),  # `.`, `:`, `-` and `_` inside
    ("single", None),  # one character
    ("pair", None),  # X ...
    ("pair-newline", "a trailing newline"),  # ... then X\n: NATS would strip it to X's Nats-Msg-Id
    ("newline", "a trailing newline"),
    ("too-long", "65 characters"),
    ("outside", "a character outside [A-Za-z0-9._:-]"),
)
CYCLE = len(KINDS)
# Outside the set, each a way a looser check would let one in: a path or URL character, space and tab,
# a Latin letter with an accent and an Arabic-Indic digit (which `\w`, `\d` and str.isalnum() take),
# a carriage return (a header's line break), and a character JSON must escape.
OUTSIDE = ("/", " ", "#", "+", "\t", "\u00e9", "\u0663", "\r", '"', "*", "=", "@")


@dataclass(frozen=True)
class Cid:
    """An intent's cid as sent: `kind` (KINDS; `plain` in the plain mode) and, when the cid breaks the
    rule, `off_rule`: how."""

    text: str
    kind: str = "plain"
    off_rule: str | None = None


def follows_rule(cid: str) -> bool:
    return RULE.fullmatch(cid) is not None


class Cids:
    """The cid of intent `i` of one run: a function of the run's prefix, the seed and `i` alone, so every
    load process of the run (each taking every n-th intent) names intent `i` alike."""

    def __init__(self, style: str, prefix: str, seed: int) -> None:
        if style not in STYLES:
            raise ValueError(f"cids: {style!r}; allowed: {', '.join(STYLES)}")
        self.style, self.prefix = style, prefix
        rng = random.Random(
            f"cids-{seed}"
        )  # its own draws: the plan's agents, keys and values stay as they were
        self.alphabet = "".join(rng.sample(RULE_CHARS, len(RULE_CHARS)))
        self.outside = rng.sample(OUTSIDE, len(OUTSIDE))  # each of them once in every len(OUTSIDE) cycles

    def __call__(self, i: int) -> Cid:
        plain = f"{self.prefix}-{i:06d}"
        if self.style == "plain":
            return Cid(plain)
        kind, off = KINDS[i % CYCLE]
        cycle = i // CYCLE
        if kind == "plain":
            text = plain
        elif kind == "max-length":
            text = _padded(plain + ".", MAX_LEN)
        elif kind == "punctuation":
            text = f"{self.prefix}:{i:06d}.-_:."
        elif kind == "single":
            text = self._short(cycle)
        elif kind == "pair":
            text = f"{plain}.x"
        elif kind == "pair-newline":
            text = f"{self.prefix}-{i - 1:06d}.x\n"  # the pair's first cid, and a newline
        elif kind == "newline":
            text = plain + "\n"
        elif kind == "too-long":
            text = _padded(plain + ".", MAX_LEN + 1)
        else:
            text = plain + self.outside[cycle % len(self.outside)]
        return Cid(text, kind, off)

    def _short(self, n: int) -> str:
        """The n-th of the shortest cids, over this seed's order of the rule's characters: one character
        for the first 66 cycles, then two, and so on (bijective base 66), so none repeats in a run."""
        base, out = len(self.alphabet), ""
        n += 1
        while n:
            n, r = divmod(n - 1, base)
            out = self.alphabet[r] + out
        return out


def _padded(text: str, length: int) -> str:
    """`text` filled to `length` with the rule's punctuation, or an error when it is already longer."""
    if len(text) > length:
        raise ValueError(
            f"cid {text!r} is over {length} characters before padding: the run's prefix is too long"
        )
    fill = "-._:" * length
    return text + fill[: length - len(text)]
