"""Where things live: the checkout, the cache outside it, the reports folder."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Slow build products (rootfs, binaries, wheels), kept outside the checkout
    so a fresh clone reuses them. Override with SOLAR_CHAOS_CACHE."""
    env = os.environ.get("SOLAR_CHAOS_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "solar-chaos"


def reports_dir() -> Path:
    return Path(os.environ.get("SOLAR_CHAOS_REPORTS", ROOT / "reports"))


def runs_state_dir() -> Path:
    """Host directories runs make while they live (faultfs volumes, NATS's config file), one folder per run
    id; `solar-chaos clean` removes those of dead runs. Override with SOLAR_CHAOS_STATE."""
    env = os.environ.get("SOLAR_CHAOS_STATE")
    return Path(env) if env else cache_dir() / "runs"
