"""Options of `make efficacy` (tests/efficacy): --clean-from, the clean half of each row already proven."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("solar-chaos").addoption(
        "--clean-from",
        default=None,
        metavar="JUNIT_XML",
        help="the JUnit XML of a `make scenarios` run of this same checkout (reports/junit.xml): a row whose "
        "scenario it shows valid, run as the row would run it (same scenario and seed, no planted bug), "
        "takes that run as its clean half instead of running the scenario again (.ci/run does this)",
    )
