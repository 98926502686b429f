"""The FUSE binding of a faultfs volume (mfusepy over libfuse3): kernel caching off, so every
read and stat asks the volume and a `lose` shows at once."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

import mfusepy

from harness.faultfs import FSTYPE
from harness.faultfs.volume import Volume


class FaultOps(mfusepy.Operations):
    """Maps libfuse's high-level calls onto the volume; an OSError's errno goes back to the
    caller (mfusepy does that), so EIO and ENOSPC reach the application unchanged."""

    use_ns = True  # times in nanoseconds, as the backing file system keeps them

    def __init__(self, volume: Volume, on_init: Callable[[], None] | None = None) -> None:
        self.volume = volume
        self._on_init = on_init
        # With nullpath_ok libfuse passes no path to calls on an open directory: keep it here.
        self._dirs: dict[int, str] = {}
        self._dir_fhs = itertools.count(1)

    def init_with_config(self, conn_info: Any, config_3: Any) -> None:
        if config_3 is not None:
            # The kernel must not answer reads, sizes or lookups from its caches: after a
            # `lose` it would keep serving data the volume dropped. direct_io costs shared
            # mmap (NATS, the agents and SurrealDB do not map their files).
            config_3.direct_io = 1
            config_3.entry_timeout = 0.0
            config_3.attr_timeout = 0.0
            config_3.negative_timeout = 0.0
            config_3.kernel_cache = 0
            config_3.auto_cache = 0
            # Unlink removes the backing file at once (no .fuse_hidden files); calls on a
            # still-open unlinked file come with its handle, which is all the volume needs.
            config_3.hard_remove = 1
            # Calls on open files come without a path (libfuse would answer ESTALE for an
            # unlinked one otherwise); the volume and the directory handles keep the paths.
            config_3.nullpath_ok = 1
            config_3.use_ino = 1
        if self._on_init is not None:
            self._on_init()

    def _own(self, path: str) -> None:
        """Give a new entry to the caller, not to the daemon (root): a container process of
        another uid must be able to reopen what it created."""
        uid, gid, _ = mfusepy.fuse_get_context()
        if os.geteuid() == 0 and (uid, gid) != (0, 0):  # only root may give files away
            self.volume.chown(path, uid, gid)

    # data
    def create(self, path: str, mode: int, flags: int = 0) -> int:
        fh = self.volume.open(path, flags, mode)
        self._own(path)
        return fh

    def open(self, path: str, flags: int) -> int:
        return self.volume.open(path, flags)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return self.volume.read(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return self.volume.write(fh, data, offset)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self.volume.truncate(path, length, fh)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self.volume.fsync(fh, path)
        return 0

    def opendir(self, path: str) -> int:
        fh = next(self._dir_fhs)
        self._dirs[fh] = path
        return fh

    def releasedir(self, path: str | None, fh: int) -> int:
        self._dirs.pop(fh, None)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        self.volume.fsyncdir(path or self._dirs.get(fh, "/"))
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0  # close(2) persists nothing, as on a disk with a page cache

    def release(self, path: str, fh: int) -> int:
        self.volume.release(fh)
        return 0

    # namespace
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        return self.volume.getattr(path, fh)

    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict, int]]:
        return self.volume.readdir(path or self._dirs[fh])

    def mkdir(self, path: str, mode: int) -> int:
        self.volume.mkdir(path, mode)
        self._own(path)
        return 0

    def rmdir(self, path: str) -> int:
        self.volume.rmdir(path)
        return 0

    def unlink(self, path: str) -> int:
        self.volume.unlink(path)
        return 0

    def rename(self, old: str, new: str) -> int:
        self.volume.rename(old, new)
        return 0

    def link(self, target: str, source: str) -> int:
        self.volume.link(target, source)
        return 0

    def symlink(self, target: str, source: str) -> int:
        self.volume.symlink(target, source)
        self._own(target)
        return 0

    def readlink(self, path: str) -> str:
        return self.volume.readlink(path)

    def chmod(self, path: str, mode: int) -> int:
        self.volume.chmod(path, mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self.volume.chown(path, uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self.volume.utimens(path, times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return self.volume.statfs()


class _FUSE(mfusepy.FUSE):
    """mfusepy's libfuse3 truncate drops the file handle; an ftruncate of an unlinked file
    (path NULL) needs it."""

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        return self.ftruncate(path, length, fip)


def serve(volume: Volume, mountpoint: str, label: str, on_init: Callable[[], None] | None = None) -> None:
    """Mount `volume` at `mountpoint` and serve it until unmounted or sent SIGTERM/SIGINT
    (libfuse's own handlers end the loop and unmount). `label` becomes the mount's source
    (fsname), where `unmount_leftovers` finds the run that made it."""
    logging.getLogger("mfusepy").setLevel(logging.WARNING)
    _FUSE(
        FaultOps(volume, on_init),
        mountpoint,
        foreground=True,
        # Many threads: a slow or failing fsync of one file must not stall reads and writes
        # of the others (NATS writes many files from many goroutines); the volume locks.
        nothreads=False,
        allow_other=True,  # container processes run as other uids
        default_permissions=True,  # the kernel checks modes for them; the daemon runs as root
        fsname=label,
        subtype=FSTYPE,
    )
