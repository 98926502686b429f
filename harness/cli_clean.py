"""`solar-chaos clean`: what runs no longer alive left (containers, networks, volumes, faultfs mounts,
host directories), and with --images the outdated images and their compiled sources."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness import engine
from harness.terminal import safe


def cmd_clean(args: argparse.Namespace) -> int:
    from harness.paths import runs_state_dir

    runs_state_dir()  # a SOLAR_CHAOS_STATE that clean must not empty is refused before anything is removed
    runs = engine.list_runs()
    removed = kept = 0
    failed: list[str] = []
    for res in runs.values():
        if res.alive and not args.all:
            kept += 1
            continue
        n = res.count()
        problems = engine.remove_run(res)
        failed += problems
        removed += n - len(problems)
        print(f"run {safe(res.run_id)}: removed {n - len(problems)} of {n}")
    mounts = stale_mounts(args.all)
    if mounts:
        from harness.faultfs.control import FaultFSError, unmount

        for m in mounts:
            try:
                unmount(m.mountpoint)
                print(f"run {safe(m.run_id)}: unmounted faultfs {safe(m.mountpoint)}")
            except FaultFSError as e:
                failed.append(f"faultfs mount {safe(m.mountpoint)}: {safe(e)}")
    from harness.topology.disks import remove_dead_dirs

    dirs = remove_dead_dirs(everything=args.all)  # the runs' host directories, once unmounted
    for d in dirs:
        print(f"removed {safe(d)}")
    if kept:
        print(f"kept {kept} runs still alive (--all removes them too)")
    if args.images:
        import shutil

        from harness.images import Images

        images = Images("offline", log=lambda m: None)
        for tag in images.stale():
            engine.client().images.remove(tag)
            print(f"removed image {tag}")
        for folder in images.stale_builds():
            shutil.rmtree(folder)
            print(f"removed build {safe(folder)}")
    elif not runs and not mounts and not dirs:
        print("nothing to clean")
    for p in failed:
        print(f"could not remove {safe(p)}", file=sys.stderr)
    return 1 if failed else 0


def stale_mounts(everything: bool = False) -> list[Any]:
    """The faultfs mounts (a run's host mounts, labelled with its run id and owner) whose run is no
    longer alive; every one with `everything`."""
    from harness.faultfs.control import faultfs_mounts

    return [m for m in faultfs_mounts() if everything or not m.owner or not engine.owner_alive(m.owner)]
