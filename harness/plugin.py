"""The pytest plugin: options, markers and fixtures shared by tests/ and scenarios/."""

from __future__ import annotations

import os

import pytest

from harness.images import Images, Mode


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("solar-chaos")
    group.addoption(
        "--images",
        default=os.environ.get("SOLAR_CHAOS_IMAGES", "auto"),
        choices=[m.value for m in Mode],
        help="offline: built here from package registries; official: upstream images; "
        "auto (default): official when all are present, else offline",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine and the images (real containers)")
    config.addinivalue_line("markers", "soak: long-running soak scenario")


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> Images:
    """The image set, built or pulled where missing (cached: a no-op when present)."""
    imgs = Images(request.config.getoption("--images"))
    imgs.ensure()
    return imgs
