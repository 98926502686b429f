"""The map from netsync's promise-bearing modules to the scenarios that guard them, read from its page
(docs/mutation.md, "Which scenarios guard which file") the way harness.planted reads the contract's
table, so that what `make mutation` runs is what the page says."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import ROOT

PAGE = ROOT / "docs" / "mutation.md"
HEADING = "## Which scenarios guard which file"
# | `netsync/agent.py` | `buffer-overflow-backpressure`, `agent-crash-with-buffer` | why |
_ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| (?P<scenarios>[^|]*) \|(?P<why>[^|]*)\|$")
_NAME = re.compile(r"^`(?P<name>[a-z0-9-]+)`$")


class MapError(HarnessError):
    """The map of docs/mutation.md cannot be read: the message names the line and the fix."""


@dataclass(frozen=True)
class Guard:
    file: str  # relative to the checkout, e.g. netsync/agent.py
    scenarios: tuple[str, ...]  # files of scenarios/ without .yaml, in the order they run


def read_map(page: Path = PAGE, root: Path = ROOT) -> list[Guard]:
    """Every row of the page's table, in page order. A row names an existing netsync file once, and one or
    more existing scenarios; anything else is a MapError naming the page's line."""
    lines = page.read_text().splitlines()
    try:
        start = lines.index(HEADING)
    except ValueError:
        raise MapError(f"{page}: no heading {HEADING!r}; the map is the table under it") from None
    out: list[Guard] = []
    for no, line in enumerate(lines[start + 1 :], start + 2):
        if line.startswith("## "):
            break
        if not line.startswith("| `"):
            continue  # prose, the header row, the separator
        where = f"{page}:{no}"
        m = _ROW.match(line)
        if m is None:
            raise MapError(
                f"{where}: a row is | `netsync/FILE.py` | `scenario`, `scenario` | why |; got {line!r}"
            )
        file = m["file"]
        if not (file.startswith("netsync/") and file.endswith(".py")):
            raise MapError(f"{where}: {file!r} is not a module of netsync/ (netsync/NAME.py)")
        if not (root / file).is_file():
            raise MapError(f"{where}: {file} does not exist")
        if any(g.file == file for g in out):
            raise MapError(f"{where}: {file} has a row already; one row per file")
        names = []
        for word in (w.strip() for w in m["scenarios"].split(",")):
            n = _NAME.match(word)
            if n is None:
                raise MapError(f"{where}: scenarios are `name`, `name` (files of scenarios/); got {word!r}")
            if not (root / "scenarios" / f"{n['name']}.yaml").is_file():
                raise MapError(f"{where}: no scenario {n['name']!r} (scenarios/{n['name']}.yaml)")
            names.append(n["name"])
        out.append(Guard(file, tuple(names)))
    if not out:
        raise MapError(f"{page}: the table under {HEADING!r} has no rows")
    return out


def choose(guards: list[Guard], files: list[str] | None) -> list[Guard]:
    """The rows for `--files` (all rows when None); a file with no row is an error naming the rows."""
    if not files:
        return guards
    by_file = {g.file: g for g in guards}
    unknown = [f for f in files if f not in by_file]
    if unknown:
        raise MapError(f"--files: {', '.join(unknown)} has no row in {PAGE.name}; rows: {', '.join(by_file)}")
    return [by_file[f] for f in files]
