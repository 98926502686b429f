"""The faultfs daemon: `python -m harness.faultfs MOUNTPOINT BACKING --control SOCKET`.
Mounts, answers the control socket once the mount is up, unmounts on SIGTERM, SIGINT, an
unmount, or the death of its parent."""

from __future__ import annotations

import argparse
import os
import sys

from harness.faultfs import FSTYPE
from harness.faultfs.fuse import serve
from harness.faultfs.server import ControlServer, watch_parent
from harness.faultfs.volume import Volume


def label(run_id: str, owner: str) -> str:
    """The mount's source in /proc/self/mountinfo: faultfs:<run id>:<owner token>."""
    for part in (run_id, owner):
        if any(c in part for c in ", \t\n\\"):
            raise ValueError(f"faultfs: {part!r} may not hold commas, spaces or backslashes")
    return f"{FSTYPE}:{run_id}:{owner}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.faultfs", description=__doc__)
    p.add_argument("mountpoint")
    p.add_argument("backing")
    p.add_argument("--control", required=True, help="path of the control socket to serve")
    p.add_argument("--run-id", default="adhoc", help="the run the mount belongs to")
    p.add_argument("--owner", default="", help="owner token of the process that asked (engine.owner_token)")
    p.add_argument("--parent", type=int, default=os.getppid(), help="end when this pid is gone")
    p.add_argument(
        "--no-backing-fsync", action="store_true", help="persist without fsyncing the backing file (faster)"
    )
    args = p.parse_args(argv)

    volume = Volume(args.backing, backing_fsync=not args.no_backing_fsync)
    server = ControlServer(args.control, volume)
    watch_parent(args.parent)
    try:
        serve(volume, args.mountpoint, label(args.run_id, args.owner or f"pid{args.parent}"), server.start)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
