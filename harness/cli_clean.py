"""`solar-chaos clean`: what runs no longer alive left (containers, networks, volumes, faultfs mounts,
host directories), and with --images the outdated images and their compiled sources."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from harness import engine
from harness.terminal import safe

if TYPE_CHECKING:
    from harness.topology.fleet import Removed


def cmd_clean(args: argparse.Namespace) -> int:
    from harness.paths import runs_state_dir

    runs_state_dir()  # a SOLAR_CHAOS_STATE that clean must not empty is refused before anything is removed
    others = _other_hosts(args.hosts) if args.hosts else []  # a bad file too
    removed = kept = 0
    failed: list[str] = []
    elsewhere = 0  # resources of runs found on other hosts' engines
    if others:  # first: an engine reached through this machine's (a stand-in's address) may go with it
        gone = _clean_hosts(others, args.all)
        failed += gone.problems
        kept += len(gone.kept)
        elsewhere = sum(of for *_, of in gone.removed)
    runs = engine.list_runs()
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
    elif not runs and not mounts and not dirs and not elsewhere:
        print("nothing to clean")
    for p in failed:
        print(f"could not remove {safe(p)}", file=sys.stderr)
    return 1 if failed else 0


def stale_mounts(everything: bool = False) -> list[Any]:
    """The faultfs mounts (a run's host mounts, labelled with its run id and owner) whose run is no
    longer alive; every one with `everything`."""
    from harness.faultfs.control import faultfs_mounts

    return [m for m in faultfs_mounts() if everything or not m.owner or not engine.owner_alive(m.owner)]


def _other_hosts(path: str) -> list[str]:
    """The engines of other hosts a --hosts file names (`tcp://`, `ssh://`, `unix://`): the stand-ins are
    containers of this machine's engine, removed with it. Raises ScenarioError for a bad file."""
    from harness.scenario.hosts import read_hosts_file
    from harness.topology.fleet import STANDIN
    from harness.topology.placement import LOCAL

    urls = [h["engine"] for h in read_hosts_file(path)]
    return [u for u in urls if u != LOCAL and not STANDIN.fullmatch(u)]


def _clean_hosts(urls: list[str], everything: bool) -> Removed:
    """The runs left on the engines `urls`: removed, and said."""
    from harness.errors import TopologyError
    from harness.topology.fleet import Removed, connect, remove_runs

    targets, done = [], Removed()
    for url in urls:
        try:
            targets.append(connect(url))
        except TopologyError as e:
            done.problems.append(str(e))
    gone = remove_runs(targets, everything=everything)
    for t in targets:
        t.client.close()
    for run_id, where, removed, of in gone.removed:
        print(f"run {safe(run_id)} on {safe(where)}: removed {removed} of {of}")
    gone.problems[:0] = done.problems
    return gone
