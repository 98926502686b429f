"""A faultfs volume: a backing directory whose files' data stays unsynced (in this process's
memory) until fsync, fdatasync or an O_SYNC write persists it, so `lose` can drop it as a power
loss would. Namespace operations (create, mkdir, rename, unlink, link) reach the backing
directory at once and survive `lose`, as in LazyFS (docs/faultfs.md says why)."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from dataclasses import dataclass

from harness.faultfs.faults import Faults
from harness.faultfs.unsynced import Unsynced

_SYNC_FLAGS = os.O_SYNC | os.O_DSYNC
# The backing file is opened without these: truncation and O_APPEND are applied to the
# unsynced state, syncing is ours to do, and creation is a separate call.
_STRIP = os.O_TRUNC | os.O_APPEND | _SYNC_FLAGS | os.O_CREAT | os.O_EXCL | getattr(os, "O_DIRECT", 0)

Key = tuple[int, int]  # (st_dev, st_ino) of the backing file: unsynced state follows the inode


@dataclass
class Handle:
    fd: int
    key: Key
    path: str
    flags: int

    @property
    def writable(self) -> bool:
        return self.flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


class Volume:
    """Paths are the mount's ("/a/b"); every call is safe from many threads."""

    def __init__(self, backing: str, *, backing_fsync: bool = True) -> None:
        self.backing = os.path.realpath(backing)
        if not os.path.isdir(self.backing):
            raise NotADirectoryError(errno.ENOTDIR, "faultfs: backing is not a directory", backing)
        # fsync the backing file too, so a persisted write costs what it costs on a disk and
        # the system under test keeps its real timing.
        self.backing_fsync = backing_fsync
        self.faults = Faults()
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._next_fh = 1
        self._unsynced: dict[Key, Unsynced] = {}
        self._epoch = 0  # losses so far: an fsync that spans one fails

    # -- helpers ------------------------------------------------------------------------
    def real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    @staticmethod
    def _key(st: os.stat_result) -> Key:
        return (st.st_dev, st.st_ino)

    def _size(self, key: Key, fd: int) -> int:
        u = self._unsynced.get(key)
        return u.size if u is not None else os.fstat(fd).st_size

    def _state(self, key: Key, fd: int) -> Unsynced:
        """The unsynced state of `key`, made on first change with its own O_RDWR descriptor
        (reopened through /proc so it survives the handle's close, a rename or an unlink)."""
        u = self._unsynced.get(key)
        if u is None:
            own = os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
            u = self._unsynced[key] = Unsynced(own, os.fstat(own).st_size)
        return u

    def _forget(self, key: Key) -> None:
        """The file is gone from the namespace and no handle remains: its data goes with it."""
        if any(h.key == key for h in self._handles.values()):
            return
        u = self._unsynced.pop(key, None)
        if u is not None:
            os.close(u.fd)

    def _forget_if_last_name(self, real: str) -> None:
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            self._forget(self._key(st))

    def _handle(self, fh: int) -> Handle:
        try:
            return self._handles[fh]
        except KeyError:
            raise OSError(errno.EBADF, "faultfs: unknown file handle") from None

    # -- open and close ---------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int | None = None) -> int:
        """Open (or, with `mode`, create) `path`; O_TRUNC is an unsynced change like truncate."""
        if flags & os.O_TRUNC and flags & os.O_ACCMODE != os.O_RDONLY:
            self.faults.check("write", path)
        real = self.real(path)
        with self._lock:
            bflags = (flags & ~_STRIP) | os.O_CLOEXEC
            if mode is not None:
                bflags |= os.O_CREAT | (flags & os.O_EXCL)
                fd = os.open(real, bflags, mode)
            else:
                fd = os.open(real, bflags)
            h = Handle(fd, self._key(os.fstat(fd)), path, flags)
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = h
            if flags & os.O_TRUNC and h.writable and self._size(h.key, fd) > 0:
                self._state(h.key, fd).truncate(0)
        if flags & os.O_TRUNC and flags & _SYNC_FLAGS:
            self.fsync(fh)
        return fh

    def release(self, fh: int) -> None:
        with self._lock:
            h = self._handles.pop(fh, None)
            if h is None:
                return
            u = self._unsynced.get(h.key)
            if u is not None and os.fstat(u.fd).st_nlink == 0:
                self._forget(h.key)
            os.close(h.fd)

    # -- data ---------------------------------------------------------------------------
    def read(self, fh: int, size: int, offset: int) -> bytes:
        h = self._handle(fh)
        self.faults.check("read", h.path)
        with self._lock:
            u = self._unsynced.get(h.key)
            if u is None:
                return os.pread(h.fd, size, offset)
            return u.read(offset, size, lambda off, n: os.pread(u.fd, n, off))

    def write(self, fh: int, data: bytes, offset: int) -> int:
        h = self._handle(fh)
        self.faults.check("write", h.path)
        with self._lock:
            size = self._size(h.key, h.fd)
            if h.flags & os.O_APPEND:
                offset = size
            self.faults.check_growth(h.path, size, offset + len(data))
            self._state(h.key, h.fd).write(offset, data)
        if h.flags & _SYNC_FLAGS:
            self.fsync(fh)
        return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        h = self._handles.get(fh) if fh is not None else None
        where = h.path if h is not None else path or "?"
        self.faults.check("write", where)
        with self._lock:
            if h is not None:
                fd, close = h.fd, False
            else:
                fd, close = os.open(self.real(where), os.O_RDONLY | os.O_CLOEXEC), True
            try:
                key = self._key(os.fstat(fd))
                self.faults.check_growth(where, self._size(key, fd), length)
                self._state(key, fd).truncate(length)
            finally:
                if close:
                    os.close(fd)

    def fsync(self, fh: int, path: str | None = None) -> None:
        """Persist the file's unsynced data (fsync and fdatasync alike)."""
        h = self._handle(fh)
        where = path or h.path
        with self._lock:
            epoch, had = self._epoch, h.key in self._unsynced
        self.faults.check("fsync", where)
        delay = self.faults.fsync_delay(where)
        if delay:
            time.sleep(delay)  # the slow disk itself, not a wait for a condition
        with self._lock:
            if had and self._epoch != epoch:
                # Power was lost while this fsync ran: it must not report the data durable.
                self.faults.counts.failed["fsync"] += 1
                raise OSError(errno.EIO, "faultfs: power lost during fsync", where)
            u = self._unsynced.pop(h.key, None)
            if u is None:
                return
            try:
                u.persist()
            except OSError:
                self._unsynced[h.key] = u  # still unsynced; the caller sees the error
                raise
        try:
            if self.backing_fsync:
                os.fsync(u.fd)
        finally:
            os.close(u.fd)

    def fsyncdir(self, path: str) -> None:
        """Directory entries are already durable (see the module's docstring): only the
        injected faults act here."""
        self.faults.check("fsync", path)
        delay = self.faults.fsync_delay(path)
        if delay:
            time.sleep(delay)

    # -- commands -----------------------------------------------------------------------
    def lose(self) -> dict:
        """Drop every unsynced write: each file is again what its last fsync left."""
        with self._lock:
            dropped = sum(u.unsynced_bytes for u in self._unsynced.values())
            files = len(self._unsynced)
            for u in self._unsynced.values():
                os.close(u.fd)
            self._unsynced.clear()
            self._epoch += 1
            c = self.faults.counts
            c.losses += 1
            c.lost_bytes += dropped
            c.lost_files += files
        return {"dropped_bytes": dropped, "files": files}

    def stats(self) -> dict:
        with self._lock:
            unsynced = sum(u.unsynced_bytes for u in self._unsynced.values())
            files = len(self._unsynced)
            handles = len(self._handles)
        c = self.faults.counts
        return {
            "losses": c.losses,
            "lost_bytes": c.lost_bytes,
            "lost_files": c.lost_files,
            "failed": dict(c.failed),
            "enospc": c.enospc,
            "slowed": c.slowed,
            "fsyncs": c.fsyncs,
            "unsynced_bytes": unsynced,
            "unsynced_files": files,
            "open_handles": handles,
            "active": self.faults.active(),
        }

    # -- namespace: straight to the backing directory -------------------------------------
    def getattr(self, path: str | None, fh: int | None = None) -> dict:
        with self._lock:
            h = self._handles.get(fh) if fh is not None else None
            st = os.fstat(h.fd) if h is not None else os.lstat(self.real(path or "/"))
            attrs = {k: getattr(st, k) for k in _STAT_KEYS}
            for k in ("st_atime", "st_mtime", "st_ctime"):
                attrs[k] = getattr(st, k + "_ns")
            u = self._unsynced.get(self._key(st)) if stat.S_ISREG(st.st_mode) else None
            if u is not None:
                attrs["st_size"] = u.size
                attrs["st_blocks"] = (u.size + 511) // 512
                attrs["st_mtime"] = attrs["st_ctime"] = max(attrs["st_mtime"], u.mtime_ns)
        return attrs

    def readdir(self, path: str) -> list[tuple[str, dict, int]]:
        """Names with their inode numbers and types (the mount passes backing inode numbers
        through, and readdir(3) hides an entry whose inode number is 0)."""
        real = self.real(path)
        out = []
        for name, p in ((".", real), ("..", os.path.dirname(real.rstrip("/")) or "/")):
            st = os.lstat(p)
            out.append((name, {"st_ino": st.st_ino, "st_mode": st.st_mode}, 0))
        with os.scandir(real) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                out.append((e.name, {"st_ino": st.st_ino, "st_mode": st.st_mode}, 0))
        return out

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self.real(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self.real(path))

    def unlink(self, path: str) -> None:
        real = self.real(path)
        with self._lock:
            self._forget_if_last_name(real)
            os.unlink(real)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            if os.path.realpath(self.real(old)) != os.path.realpath(self.real(new)):
                self._forget_if_last_name(self.real(new))
            os.rename(self.real(old), self.real(new))

    def link(self, target: str, source: str) -> None:
        os.link(self.real(source), self.real(target))

    def symlink(self, target: str, source: str) -> None:
        os.symlink(source, self.real(target))

    def readlink(self, path: str) -> str:
        return os.readlink(self.real(path))

    def chmod(self, path: str, mode: int) -> None:
        real = self.real(path)
        if not os.path.islink(real):  # Linux has no lchmod: a link's mode means nothing
            os.chmod(real, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self.real(path), uid, gid, follow_symlinks=False)

    def utimens(self, path: str, times: tuple[int, int] | None) -> None:
        if times is None:
            os.utime(self.real(path), follow_symlinks=False)
        else:
            os.utime(self.real(path), ns=times, follow_symlinks=False)

    def statfs(self) -> dict:
        sv = os.statvfs(self.backing)
        return {k: getattr(sv, k) for k in _STATVFS_KEYS}


_STAT_KEYS = ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")
_STATVFS_KEYS = (
    "f_bsize",
    "f_frsize",
    "f_blocks",
    "f_bfree",
    "f_bavail",
    "f_files",
    "f_ffree",
    "f_favail",
    "f_flag",
    "f_namemax",
)
