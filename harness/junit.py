"""The JUnit XML of a scenario session (`make scenarios` writes reports/junit.xml): each scenario's test
case carries its run directory, its verdict's headline and its report as properties (harness.plugin
writes them under these names). Read by scripts/check-reports.py and `make efficacy --clean-from`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from harness import store
from harness.errors import HarnessError

RUN_DIR, VERDICT, REPORT = "run_dir", "verdict", "report"  # the test case's properties


class JUnitError(HarnessError):
    """The JUnit XML cannot be read."""


@dataclass(frozen=True)
class Case:
    classname: str
    name: str
    passed: bool  # no failure, error or skipped element
    properties: dict[str, str]

    @property
    def run_dir(self) -> Path | None:
        return Path(self.properties[RUN_DIR]) if self.properties.get(RUN_DIR) else None


def cases(path: Path) -> list[Case]:
    """Every test case of the JUnit XML at `path`; JUnitError naming the file when it cannot be read."""
    try:
        with store.open_regular(path, "a JUnit XML file") as f:
            root = ET.fromstring(f.read(store.MAX_JSON_BYTES + 1))
    except (OSError, store.RunDirError) as e:
        raise JUnitError(f"{path}: {e}") from None
    except ET.ParseError as e:
        raise JUnitError(f"{path}: not XML ({e})") from None
    return [
        Case(
            case.get("classname", ""),
            case.get("name", ""),
            not any(child.tag in ("failure", "error", "skipped") for child in case),
            {p.get("name", ""): p.get("value", "") for p in case.iter("property")},
        )
        for case in root.iter("testcase")
    ]
