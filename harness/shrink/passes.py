"""Each way a failing schedule gets smaller, in the order shrink tries them: fewer faults (ddmin), a
shorter load, faults of one kind on one target merged, shorter fault windows (the first or the second
half), fewer agents, a lower load rate. Each pass takes the current shape and `fails`, the oracle, and returns
the smallest shape it found that still fails (the shape it was given when none did)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.shrink.candidate import Shape
from harness.shrink.ddmin import ddmin

# The oracle: does this shape still fail the same way? `what` says what was removed, for the log.
Fails = Callable[[Shape, str], bool]

MIN_WINDOW_S = 0.5  # a fault window is not halved below this
MIN_RATE = 1.0  # intents per second: the load is not halved below this
TAIL_S = 5.0  # after the last fault's end, the load runs this long at least (recovery is judged there)


def label(fault: dict[str, Any]) -> str:
    return f"{fault['fault']}@{fault['at']:g}s"


def fewer_faults(shape: Shape, fails: Fails) -> Shape:
    faults = shape.fault_dicts()

    def without(keep: list[int]) -> Shape:
        return shape.with_faults([faults[i] for i in keep])

    def test(keep: list[int]) -> bool:
        gone = [label(faults[i]) for i in range(len(faults)) if i not in keep]
        return fails(without(keep), "faults " + ", ".join(gone))

    return without(ddmin(list(range(len(faults))), test))


def _end(fault: dict[str, Any], duration: float) -> float:
    return fault["at"] + fault["for"] if fault.get("for") is not None else duration


def _same_target(a: dict[str, Any], b: dict[str, Any]) -> bool:
    rest = ("at", "for")
    return {k: v for k, v in a.items() if k not in rest} == {k: v for k, v in b.items() if k not in rest}


def merged_faults(shape: Shape, fails: Fails) -> Shape:
    """Two faults of one kind on one target (every field but the window alike) become one spanning both."""
    changed = True
    while changed:
        changed = False
        faults = sorted(shape.fault_dicts(), key=lambda f: f["at"])
        for i in range(len(faults) - 1):
            a, b = faults[i], faults[i + 1]
            if not _same_target(a, b):
                continue
            one = {**a, "for": round(max(_end(a, shape.duration), _end(b, shape.duration)) - a["at"], 6)}
            merged = faults[:i] + [one] + faults[i + 2 :]
            if fails(shape.with_faults(merged), f"merged {label(a)} and {label(b)}"):
                shape, changed = shape.with_faults(merged), True
                break
    return shape


def shorter_windows(shape: Shape, fails: Fails) -> Shape:
    """Each fault's window halved while it still fails: its first half, else its second half."""
    for i in range(len(shape.faults)):
        while True:
            faults = shape.fault_dicts()
            f = faults[i]
            length = _end(f, shape.duration) - f["at"]
            half = round(length / 2, 3)
            if half < MIN_WINDOW_S:
                break
            first = {**f, "for": half}
            second = {**f, "at": round(f["at"] + length - half, 3), "for": half}
            for part, name in ((first, "first"), (second, "second")):
                candidate = shape.with_faults(faults[:i] + [part] + faults[i + 1 :])
                if fails(candidate, f"{label(f)} cut to its {name} half ({half:g}s)"):
                    shape = candidate
                    break
            else:
                break
    return shape


def fewer_agents(shape: Shape, fails: Fails) -> Shape:
    """One agent fewer at a time (a shape whose faults name a removed agent is invalid, never run)."""
    while shape.agents > 1:
        candidate = replace(shape, agents=shape.agents - 1)
        if not fails(candidate, f"agent-{shape.agents}"):
            break
        shape = candidate
    return shape


def lower_rate(shape: Shape, fails: Fails) -> Shape:
    while shape.rate / 2 >= MIN_RATE:
        candidate = replace(shape, rate=round(shape.rate / 2, 3))
        if not fails(candidate, f"half the load ({candidate.rate:g}/s)"):
            break
        shape = candidate
    return shape


def shorter_load(shape: Shape, fails: Fails) -> Shape:
    """The load cut to the last fault's end plus TAIL_S, then halved while every fault still fits."""
    last = max((_end(f, shape.duration) for f in shape.fault_dicts()), default=0.0)
    tries = [round(last + TAIL_S, 3)]
    while tries[-1] / 2 > max(last, TAIL_S):
        tries.append(round(tries[-1] / 2, 3))
    for duration in tries:
        if duration >= shape.duration:
            continue
        candidate = replace(shape, duration=duration)
        if not fails(candidate, f"load cut to {duration:g}s"):
            break
        shape = candidate
    return shape


# A shorter load comes second: every run after it is shorter.
PASSES: tuple[tuple[str, Callable[[Shape, Fails], Shape]], ...] = (
    ("fewer faults", fewer_faults),
    ("shorter load", shorter_load),
    ("merged faults", merged_faults),
    ("shorter windows", shorter_windows),
    ("fewer agents", fewer_agents),
    ("lower rate", lower_rate),
)
