"""A run's host directory (`runs_state_dir()/<run id>/`): the faultfs volumes of the nodes whose data sits
on faultfs (topology.disk; docs/faultfs.md) and the files bind-mounted into containers (NATS's config).
Made before the containers start, so each container sees its mount; removed after they are gone; and what a
killed harness left is removed by `solar-chaos clean` (`remove_dead_dirs`)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

from harness.engine import RUN_ID_PATTERN, is_run_id, owner_alive, owner_token
from harness.errors import TopologyError
from harness.faultfs.control import FaultFS, FaultFSError, fuse_problem, mount_table
from harness.paths import runs_state_dir

log = logging.getLogger(__name__)

OWNER = "owner"  # the file in a run's directory naming the process that made it (engine.owner_token)
# Written first in a run's directory, holding its run id: `clean` removes no folder without it, so that
# a SOLAR_CHAOS_STATE pointed at a shared folder costs nobody else's data.
MARKER = ".solar-chaos"


def faultfs_missing(nodes: tuple[str, ...]) -> str | None:
    """Why these nodes' data cannot sit on faultfs here (FUSE cannot work), or None; also None for none."""
    problem = fuse_problem() if nodes else None
    return None if problem is None else f"needs faultfs (topology.disk: {', '.join(nodes)}): {problem}"


class RunDisks:
    """`disks.volume("nats")` mounts (once) and returns the node's faultfs volume; `disks.file(name, text)`
    writes a file for a bind mount; `close()` unmounts everything and removes the directory."""

    def __init__(self, run_id: str) -> None:
        if not is_run_id(run_id):
            # `clean` would never take such a folder for a run's: it would outlive a killed run for good.
            raise TopologyError(f"run id {run_id!r} is not one the harness makes ({RUN_ID_PATTERN.pattern})")
        self.run_id = run_id
        self.dir = runs_state_dir() / run_id
        self.volumes: dict[str, FaultFS] = {}

    def _ensure_dir(self) -> Path:
        if not self.dir.exists():
            self.dir.mkdir(parents=True)
            (self.dir / MARKER).write_text(self.run_id + "\n")
            (self.dir / OWNER).write_text(owner_token())
        return self.dir

    def mount(self, node: str) -> str:
        """Mount the node's faultfs volume; its mount point, to bind-mount at the node's data directory."""
        if node not in self.volumes:
            base = self._ensure_dir() / node
            try:
                self.volumes[node] = FaultFS.start(base / "backing", base / "mnt", run_id=self.run_id)
            except FaultFSError as e:
                raise TopologyError(f"{node}'s data directory on faultfs: {e}") from e
        return self.volumes[node].mountpoint

    def data_mount(self, node: str, inside: str, faultfs: tuple[str, ...]) -> dict[str, tuple[str, str]]:
        """{inside: (its mount point, "rw")} when the node is in `faultfs`, else nothing: a container's
        bind mounts (DockerRun.container)."""
        return {inside: (self.mount(node), "rw")} if node in faultfs else {}

    def volume(self, node: str) -> FaultFS:
        try:
            return self.volumes[node]
        except KeyError:
            on = ", ".join(self.volumes) or "none"
            raise TopologyError(f"{node}'s data is not on faultfs (on faultfs: {on})") from None

    def file(self, name: str, text: str) -> str:
        path = self._ensure_dir() / name
        path.parent.mkdir(parents=True, exist_ok=True)  # a name may hold a folder: "agent-1.clock/offset"
        path.write_text(text)
        return str(path)

    def close(self) -> None:
        """Unmount every volume (after the containers using it are gone) and remove the directory. A volume
        still mounted keeps the directory (rmtree would walk into the mount) for `solar-chaos clean`, which
        unmounts it first."""
        problems = []
        for node, fs in list(self.volumes.items()):
            try:
                fs.close()
            except Exception as e:
                problems.append(f"{node}: {e}")
            del self.volumes[node]
        if problems:
            raise TopologyError(
                f"run {self.run_id}: faultfs volumes not unmounted, {self.dir} left for `solar-chaos clean`: "
                + "; ".join(problems)
            )
        _rmtree(str(self.dir))


def _read_small(folder: str, name: str) -> str:
    """A marker file's text; "" unless it is a regular file of `folder` itself. Neither the folder nor
    the file is followed when a link, and a FIFO is not waited on."""
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        finally:
            os.close(dfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ""
            return os.read(fd, 4096).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)
    except OSError:
        return ""


def _rmtree(path: str) -> list[str]:
    """shutil.rmtree, which on a link (the folder swapped for one since it was looked at) removes nothing;
    what could not be removed."""
    failures: list[str] = []
    shutil.rmtree(path, onerror=lambda _f, p, exc: failures.append(f"{p}: {exc[1]}"))
    return failures


def remove_dead_dirs(everything: bool = False) -> list[Path]:
    """Remove the host directories of runs no longer alive (all of them with `everything`), as `solar-chaos
    clean` does once it has unmounted their faultfs mounts; returns those removed.

    Only a folder the harness made is a candidate: a real directory (not a link) named like a run id and
    holding the MARKER file with that id. Anything else in SOLAR_CHAOS_STATE stays, however old. A
    directory that still holds a mount point stays (rmtree would reach into the mount). Removal never
    follows a link inside the folder (shutil.rmtree's descriptor-based walk; refused where the platform
    lacks it)."""
    root = runs_state_dir()
    if not root.is_dir():
        return []
    if not shutil.rmtree.avoids_symlink_attacks:
        raise TopologyError(
            f"this platform's shutil.rmtree may follow links, so clean removes nothing under {root}; "
            "remove the dead runs' folders by hand"
        )
    try:
        with os.scandir(root) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as e:
        raise TopologyError(f"cannot list the runs' folders in {root}: {e}") from None
    mounted = [Path(point) for _kind, point, _source in mount_table()]
    removed = []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False) or not is_run_id(entry.name):
            continue
        if _read_small(entry.path, MARKER) != entry.name:
            continue
        token = _read_small(entry.path, OWNER)
        if token and owner_alive(token) and not everything:
            continue
        real = Path(os.path.realpath(entry.path))
        if any(m.is_relative_to(real) for m in mounted):
            log.warning("kept %s: a mount point is still inside it", entry.path)
            continue
        failures = _rmtree(entry.path)
        if os.path.lexists(entry.path):
            log.warning("could not remove all of %s: %s", entry.path, "; ".join(failures[:3]))
        else:
            removed.append(Path(entry.path))
    return removed
