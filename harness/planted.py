"""The contract's table of planted bugs (docs/contract.md, "Planted bugs"): for each flag, the
scenario that must catch it and the anomaly it must report. Read from the page itself, so that
what `make efficacy` and bench/efficacy_sweep.py prove is what the page says."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.paths import ROOT

CONTRACT = ROOT / "docs" / "contract.md"
_ROW = re.compile(
    r"^\| `(?P<flag>[a-z-]+)` \| [a-z]+ \|.*\| `(?P<scenario>[a-z0-9-]+)` \((?P<kind>[a-z-]+)\) \|$"
)


@dataclass(frozen=True)
class Planted:
    flag: str
    scenario: str  # a file of scenarios/, without .yaml
    kind: str  # the anomaly kind the scenario must report with the flag on


def planted() -> list[Planted]:
    """Every row of the table, in page order."""
    return [
        Planted(m["flag"], m["scenario"], m["kind"])
        for line in CONTRACT.read_text().splitlines()
        if (m := _ROW.match(line))
    ]
