"""What every plot of the report shares: matplotlib set up for SVG text (Agg, a fixed hash salt),
the figure's size, the faults' colours and labels, the shading of fault windows, and the SVG text
of a figure."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from harness.checkers.run import Fault  # noqa: E402

MAX_BINS = 300
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
        ax.axvspan(f.began, max(f.until(end), f.began + 0.2), color=fault_colour(f.kind), alpha=0.12, lw=0)


def finish(ax: plt.Axes, end: float, ylabel: str) -> None:
    ax.set_xlim(0, max(end, 1.0))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.25, lw=0.5)


def fault_label(f: Fault) -> str:
    target = f.target if isinstance(f.target, dict) else {}
    if "node" in target:
        where = str(target["node"])
    elif "links" in target:
        links = target["links"]
        where = ", ".join(links[:2]) + (f" +{len(links) - 2}" if len(links) > 2 else "")
    elif "groups" in target:
        where = " | ".join(",".join(g) for g in target["groups"])
    else:
        where = ""
    return f"{f.fault_id} {f.kind}" + (f" {where}" if where else "")
