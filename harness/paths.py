"""Where things live: the checkout, the cache outside it, the reports folder."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from harness.errors import HarnessError

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


class StateDirError(HarnessError):
    """SOLAR_CHAOS_STATE (or the cache folder under which the runs' folders sit) names a folder that cannot
    hold them: the message says which and what to set."""


def _homes() -> set[Path]:
    homes = set()
    for home in (os.environ.get("HOME"), _pw_home()):
        if home:
            homes.add(Path(home).resolve())
    return homes


def _pw_home() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return None


def runs_state_dir() -> Path:
    """Host directories runs make while they live (faultfs volumes, NATS's config file), one folder per run
    id; `solar-chaos clean` removes those of dead runs. Override with SOLAR_CHAOS_STATE.

    `clean` removes folders in it, so it must be a folder of the harness's own: `/`, a home folder or a
    folder holding one, and anything that exists but is not a directory are refused (StateDirError) before
    a run makes a folder there or `clean` looks."""
    env = os.environ.get("SOLAR_CHAOS_STATE")
    path = Path(env) if env else cache_dir() / "runs"
    name = f"SOLAR_CHAOS_STATE={env}" if env else f"the runs' folder {path} (SOLAR_CHAOS_CACHE/runs)"
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as e:  # a loop of links
        raise StateDirError(f"{name} cannot be resolved: {e}; point it at a directory") from None
    if real == Path("/"):
        problem = "is the root folder"
    elif real in _homes():
        problem = "is your home folder"
    elif any(home.is_relative_to(real) for home in _homes()):
        problem = "holds your home folder"
    elif path.is_symlink() and not path.exists():
        problem = f"is a link to {os.readlink(path)}, which does not exist"
    elif path.exists() and not path.is_dir():
        problem = "exists and is not a directory"
    else:
        return path
    raise StateDirError(
        f"{name} {problem}: `solar-chaos clean` removes the dead runs' folders in it, so it must be a "
        "directory of its own for the runs' host files (unset it for ~/.cache/solar-chaos/runs)"
    )
