"""What every plot of the report shares: matplotlib set up for SVG text (Agg, a fixed hash salt),
the figure's size, the faults' colours and labels, the shading of fault windows, and the SVG text
of a figure.

The data is untrusted: its text is never read as mathtext (`$\\foo$` would throw), a label the data
names is never dropped for its leading underscore, values that are not finite or beyond MAX_VALUE
are left out and counted, and a plot that cannot be drawn is a notice in the page (`@drawn`), never
an exception."""

from __future__ import annotations

import functools
import io
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harness.checkers.run import Fault, Sample  # noqa: E402

MAX_BINS = 300
MAX_VALUE = 1e15  # beyond this a time (s), a count or a size is not a measurement: not drawn
MAX_SERIES = 20  # sources drawn in one plot; the rest are counted in a notice
MAX_LABEL = 60  # characters of a label taken from the data
MAX_FAULTS = 200  # rows of the timeline
# Text from the data is shown as written: `$...$` is not mathematics here.
SAFE_TEXT = {"text.parse_math": False, "text.usetex": False}
WIDTH_IN, HEIGHT_IN = 9.0, 2.6
FAULT_COLOURS = {
    "partition": "#d62728",
    "isolate": "#d62728",
    "outage": "#9467bd",
    "crash": "#8c564b",
    "pause": "#e377c2",
    "repeat": "#17becf",
}
OTHER_FAULT = "#ff7f0e"  # latency and the other toxics
plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller, and searchable in the page
        "svg.hashsalt": "solar-chaos",  # the same run gives the same SVG
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "path.simplify": True,
    }
)


def fault_colour(kind: str) -> str:
    return FAULT_COLOURS.get(kind, OTHER_FAULT)


def bin_width(end: float) -> float:
    """Seconds per bin: 1 s, or wider so that a long run keeps MAX_BINS points."""
    return max(1.0, math.ceil(end / MAX_BINS))


def svg(fig: plt.Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # no XML prolog inside the HTML page


def axes(rows: int = 1, height: float = HEIGHT_IN) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(rows, 1, figsize=(WIDTH_IN, height * rows), sharex=True, squeeze=False)
    return fig, [a for (a,) in axes]


def shade(ax: plt.Axes, faults: Sequence[Fault], end: float) -> None:
    for f in faults:
        if (w := window(f, end)) is not None:
            ax.axvspan(w[0], max(w[1], w[0] + 0.2), color=fault_colour(f.kind), alpha=0.12, lw=0)


def finish(ax: plt.Axes, end: float, ylabel: str) -> None:
    ax.set_xlim(0, max(end, 1.0))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.25, lw=0.5)


def _text(value: Any) -> str:
    return " ".join(str(value).split())


def fault_label(f: Fault) -> str:
    """`f1 partition agent-1>nats, ...`: its id, kind and target, whatever shape the target has."""
    target = f.target if isinstance(f.target, dict) else {}
    if "node" in target:
        where = _text(target["node"])
    elif "links" in target:
        links = target["links"] if isinstance(target["links"], list) else [target["links"]]
        where = ", ".join(_text(x) for x in links[:2]) + (f" +{len(links) - 2}" if len(links) > 2 else "")
    elif "groups" in target:
        groups = target["groups"] if isinstance(target["groups"], list) else [target["groups"]]
        where = " | ".join(",".join(map(_text, g)) if isinstance(g, list) else _text(g) for g in groups)
    else:
        where = ""
    return f"{_text(f.fault_id)} {_text(f.kind)}" + (f" {where}" if where else "")


class NotDrawn(Exception):
    """Nothing of this plot can be drawn; the message says what is missing."""


class _Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped: Counter[str] = Counter()


_NOTES: ContextVar[_Notes | None] = ContextVar("plot_notes", default=None)


def notice(text: str) -> str:
    """A notice in the page, in place of a plot or above it."""
    return f"<p class=notice>{escape(text, quote=True)}</p>"


def note(text: str) -> None:
    """Something the plot being drawn leaves out, said above it."""
    notes = _NOTES.get()
    if notes is not None and text not in notes.lines:
        notes.lines.append(text)


def drawn(what: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """A plot function made safe on any data: drawn with SAFE_TEXT, its notes above it, and a notice
    naming `what` and the reason in its place when it cannot be drawn at all."""

    def wrap(plot: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(plot)
        def run(*args: Any, **kwargs: Any) -> str:
            notes = _Notes()
            token = _NOTES.set(notes)
            figures = set(plt.get_fignums())
            try:
                with plt.rc_context(SAFE_TEXT):
                    out = plot(*args, **kwargs)
            except NotDrawn as e:
                out = notice(f"{what}: not drawn: {e}")
            except Exception as e:  # whatever the data made matplotlib or numpy throw
                reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
                out = notice(f"{what}: not drawn: {reason}")
            finally:
                _NOTES.reset(token)
                for number in set(plt.get_fignums()) - figures:
                    plt.close(number)
            lines = notes.lines + [
                f"{n} {field} values not drawn: missing, not finite or beyond {MAX_VALUE:g}"
                for field, n in sorted(notes.dropped.items())
            ]
            return "".join(notice(f"{what}: {line}") for line in lines) + out

        return run

    return wrap


def label(value: Any) -> str:
    """A label from the data, on one line and at most MAX_LABEL characters."""
    text = _text(value)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 3] + "..."


def legend(ax: plt.Axes, shown: list[tuple[Any, str]], **kwargs: Any) -> None:
    """A legend of exactly these (artist, label): a label from the data may start with `_`, which
    matplotlib's own gathering of labels would drop."""
    if shown:
        ax.legend([a for a, _ in shown], [label(text) for _, text in shown], **kwargs)


def span(end: Any) -> float:
    """The run's end as an axis: finite, at least 1 s, at most MAX_VALUE."""
    if isinstance(end, bool) or not isinstance(end, int | float) or not math.isfinite(end) or end > MAX_VALUE:
        note(f"the run's end ({end!r}) is not a usable time; the axis stops at 1 s")
        return 1.0
    return max(float(end), 1.0)


def usable(field: str, t: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """The points whose time and value are finite and within MAX_VALUE; the others counted."""
    t = np.asarray(t, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(t) & np.isfinite(values) & (np.abs(t) <= MAX_VALUE)
        keep &= np.abs(values) <= MAX_VALUE
    notes = _NOTES.get()
    if (dropped := int(len(t) - keep.sum())) > 0 and notes is not None:
        notes.dropped[field] += dropped
    return t[keep], values[keep]


def series(samples: Iterable[Sample], field: str) -> tuple[np.ndarray, np.ndarray]:
    """(t, value) of the samples that carry `field`, usable ones only."""
    points = [(s.t, v) for s in samples if (v := getattr(s, field, None)) is not None]
    return usable(field, [p[0] for p in points], [p[1] for p in points])


def sources(names: Iterable[str], what: str) -> list[str]:
    """At most MAX_SERIES of these names, in order; a note says how many more were left out."""
    names = sorted(names)
    if len(names) > MAX_SERIES:
        note(f"{len(names) - MAX_SERIES} more {what} not drawn (the first {MAX_SERIES} by name are)")
    return names[:MAX_SERIES]


def number(value: Any) -> float | None:
    """A limit or budget from the data as a drawable number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and abs(value) <= MAX_VALUE else None


def window(f: Fault, end: float) -> tuple[float, float] | None:
    """A fault's window clipped to the axis [0, end], or None when its times are not usable."""
    a, b = f.began, f.until(end)
    if number(a) is None or number(b) is None:
        note(f"fault {label(f.fault_id)}: its times are not usable; not shown")
        return None
    return min(max(a, 0.0), end), min(max(b, a, 0.0), end)
