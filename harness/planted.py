"""The contract's table of planted bugs (docs/contract.md, "Planted bugs"): for each flag, the
scenario that must catch it, the anomaly it must report, and which implementations have it. Read from
the page itself, so that what `make efficacy` and bench/efficacy_sweep.py prove is what the page says."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.paths import ROOT

CONTRACT = ROOT / "docs" / "contract.md"
# The header names the implementations: the columns between `role` and `the mistake`.
_HEADER = re.compile(r"^\| flag \| role \| (?P<names>(?:[a-z0-9-]+ \| )*)the mistake \|")
_ROW = re.compile(
    r"^\| `(?P<flag>[a-z-]+)` \| [a-z]+ \| (?P<has>(?:(?:yes|no) \| )*)"
    r".*\| `(?P<scenario>[a-z0-9-]+)` \((?P<kind>[a-z-]+)\) \|$"
)


@dataclass(frozen=True)
class Planted:
    flag: str
    scenario: str  # a file of scenarios/, without .yaml
    kind: str  # the anomaly kind the scenario must report with the flag on
    implementations: frozenset[str] = field(default=frozenset())  # those whose column says yes


def planted() -> list[Planted]:
    """Every row of the table, in page order."""
    names: list[str] = []
    rows = []
    for line in CONTRACT.read_text().splitlines():
        if h := _HEADER.match(line):
            names = h["names"].split(" | ")[:-1]
        elif m := _ROW.match(line):
            has = m["has"].split(" | ")[:-1]
            yes = frozenset(name for name, said in zip(names, has, strict=True) if said == "yes")
            rows.append(Planted(m["flag"], m["scenario"], m["kind"], yes))
    return rows
