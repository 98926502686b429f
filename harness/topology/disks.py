"""A run's host directory (`runs_state_dir()/<run id>/`): the faultfs volumes of the nodes whose data sits
on faultfs (topology.disk; docs/faultfs.md) and the files bind-mounted into containers (NATS's config).
Made before the containers start, so each container sees its mount; removed after they are gone; and what a
killed harness left is removed by `solar-chaos clean` (`remove_dead_dirs`)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from harness.engine import owner_alive, owner_token
from harness.errors import TopologyError
from harness.faultfs.control import FaultFS, FaultFSError, faultfs_mounts, fuse_problem
from harness.paths import runs_state_dir

log = logging.getLogger(__name__)

OWNER = "owner"  # the file in a run's directory naming the process that made it (engine.owner_token)


def faultfs_missing(nodes: tuple[str, ...]) -> str | None:
    """Why these nodes' data cannot sit on faultfs here (FUSE cannot work), or None; also None for none."""
    problem = fuse_problem() if nodes else None
    return None if problem is None else f"needs faultfs (topology.disk: {', '.join(nodes)}): {problem}"


class RunDisks:
    """`disks.volume("nats")` mounts (once) and returns the node's faultfs volume; `disks.file(name, text)`
    writes a file for a bind mount; `close()` unmounts everything and removes the directory."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.dir = runs_state_dir() / run_id
        self.volumes: dict[str, FaultFS] = {}

    def _ensure_dir(self) -> Path:
        if not self.dir.exists():
            self.dir.mkdir(parents=True)
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
        """Unmount every volume (after the containers using it are gone) and remove the directory."""
        problems = []
        for node, fs in list(self.volumes.items()):
            try:
                fs.close()
            except Exception as e:
                problems.append(f"{node}: {e}")
            del self.volumes[node]
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems:
            raise TopologyError(f"run {self.run_id}: faultfs volumes not unmounted: " + "; ".join(problems))


def remove_dead_dirs(everything: bool = False) -> list[Path]:
    """Remove the host directories of runs no longer alive (all of them with `everything`), as `solar-chaos
    clean` does once it has unmounted their faultfs mounts; a directory that still holds a mount stays."""
    mounted = [Path(m.mountpoint) for m in faultfs_mounts()]
    root = runs_state_dir()
    removed = []
    for run_dir in sorted(root.iterdir()) if root.is_dir() else ():
        owner = run_dir / OWNER
        token = owner.read_text().strip() if owner.is_file() else ""
        if everything or not token or not owner_alive(token):
            if any(m.is_relative_to(run_dir) for m in mounted):
                continue  # rmtree would reach into the mount (the backing files) or fail on it
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(run_dir)
    return removed
