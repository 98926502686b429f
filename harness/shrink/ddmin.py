"""Delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing Input", 2002):
the 1-minimal sublist of `items` on which `fails` still holds, given that it holds on all of them.

Pure: `fails` is the only way out (shrink's oracle runs a scenario there). ddmin asks for the subsets
first, then their complements, doubling the granularity when neither fails; one culprit among n items
costs about 2 log2(n) questions, so ten faults shrink to one in about eight runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def split(items: Sequence[T], n: int) -> list[list[T]]:
    """`items` cut into `n` contiguous chunks whose sizes differ by at most one (the longer first)."""
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(list(items[start:end]))
        start = end
    return [c for c in chunks if c]


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool]) -> list[T]:
    """The smallest sublist found (order kept) on which `fails` holds; `items` itself when none smaller
    does. Every sublist asked about is strictly smaller than the current one; the empty list is asked
    first (a failure that needs none of the items)."""
    current = list(items)
    if not current:
        return current
    if fails([]):
        return []
    n = 2
    while len(current) >= 2:
        chunks = split(current, min(n, len(current)))
        reduced = False
        for chunk in chunks:  # a chunk alone
            if len(chunk) < len(current) and fails(chunk):
                current, n, reduced = chunk, 2, True
                break
        if not reduced and len(chunks) > 2:  # everything but a chunk (with two chunks: tried above)
            for i in range(len(chunks)):
                rest = [x for j, c in enumerate(chunks) if j != i for x in c]
                if fails(rest):
                    current, n, reduced = rest, max(len(chunks) - 1, 2), True
                    break
        if not reduced:
            if len(chunks) >= len(current):
                break  # single items, none removable: 1-minimal
            n = min(len(current), 2 * len(chunks))
    return current
