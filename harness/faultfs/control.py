"""The harness's side of faultfs: mount a volume (a daemon of its own, dying with us), tell it
what to break, unmount it; and find and unmount the mounts dead runs left behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import HarnessError
from harness.faultfs import FSTYPE
from harness.waiting import Hopeless, WaitTimeout, wait_until

INSTALL_FIX = (
    "faultfs needs /dev/fuse, fusermount3 and mfusepy: run scripts/ensure-tools.sh fuse3 "
    "(Debian: apt-get install fuse3) and .venv/bin/pip install -e '.[dev]'"
)


class FaultFSError(HarnessError):
    """A faultfs mount could not be made, commanded or removed; the message says why."""


def fuse_problem() -> str | None:
    """Why FUSE cannot work here, with the fix; None when it can (for `doctor`)."""
    if not os.path.exists("/dev/fuse"):
        return (
            "no /dev/fuse: load the fuse module (modprobe fuse) or run the container with --device /dev/fuse"
        )
    if shutil.which("fusermount3") is None:
        return f"no fusermount3: {INSTALL_FIX}"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as e:
        return f"mfusepy does not load ({e}): {INSTALL_FIX}"
    if os.geteuid() != 0 and "user_allow_other" not in _read("/etc/fuse.conf"):
        return "not root and /etc/fuse.conf lacks user_allow_other: add that line (allow_other needs it)"
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


@dataclass(frozen=True)
class Mount:
    """A faultfs mount as /proc/self/mountinfo shows it."""

    mountpoint: str
    source: str  # faultfs:<run id>:<owner token>

    @property
    def run_id(self) -> str:
        return self.source.split(":", 2)[1] if self.source.count(":") >= 2 else "?"

    @property
    def owner(self) -> str:
        return self.source.split(":", 2)[2] if self.source.count(":") >= 2 else ""


_OCTAL = re.compile(rb"\\([0-3][0-7]{2})")  # \000 to \377: one byte each


def _unescape(field: bytes) -> str:
    """A mount table field as the path the rest of the harness holds (os.fsdecode of its bytes). The kernel
    writes space, tab, newline and backslash as 3-digit octal escapes and every other byte raw, so a
    non-ASCII name arrives as raw UTF-8, or as one escape per byte (\\303\\251 for é): the escapes are
    bytes too, and only the whole field is decoded, or é would come back as two characters and match
    nothing. A name that is not UTF-8 decodes as os.fsdecode does it for every path (surrogateescape)."""
    return os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), field))


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def mount_table(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[bytes, str, str]]:
    """Every mount as (type, mount point, source), from /proc/self/mountinfo or a file in /proc/mounts'
    format (source, mount point, type first); a line of neither shape, or whose mount point is not
    absolute, is skipped."""
    found = []
    for line in _read_bytes(mountinfo).split(b"\n"):
        # Fields are separated by single spaces; a space inside a field is always escaped (\040).
        # mountinfo: id parent major:minor root mountpoint opts [optional...] - type source opts
        left, sep, right = line.partition(b" - ")
        if sep and left[:1].isdigit():
            fields, tail = left.split(b" "), right.split(b" ")
            if len(fields) >= 5 and len(tail) >= 2 and fields[4][:1] == b"/":
                found.append((tail[0], _unescape(fields[4]), _unescape(tail[1])))
        else:  # /proc/mounts: source mountpoint type opts freq passno
            fields = line.split(b" ")
            if len(fields) >= 3 and fields[1][:1] == b"/":
                found.append((fields[2], _unescape(fields[1]), _unescape(fields[0])))
    return found


def faultfs_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    fstype = f"fuse.{FSTYPE}".encode()
    return [Mount(point, source) for kind, point, source in mount_table(mountinfo) if kind == fstype]


def unmount(mountpoint: str) -> bool:
    """fusermount3 -u, lazily (-z) when the mount is busy; quiet when it is already gone.
    True when it had to be lazy (processes still hold files in it)."""
    if not any(m.mountpoint == mountpoint for m in faultfs_mounts()):
        return False
    for lazy, args in ((False, ["-u"]), (True, ["-u", "-z"])):
        r = subprocess.run(["fusermount3", *args, mountpoint], capture_output=True, text=True)
        if r.returncode == 0 or not any(m.mountpoint == mountpoint for m in faultfs_mounts()):
            return lazy
    raise FaultFSError(f"could not unmount {mountpoint}: {r.stderr.strip()} (try: umount -l {mountpoint})")


def unmount_leftovers(everything: bool = False) -> list[Mount]:
    """Unmount the faultfs mounts of runs no longer alive (all of them with `everything`), as
    `solar-chaos clean` does; returns what it unmounted."""
    from harness.engine import owner_alive

    gone = []
    for m in faultfs_mounts():
        if everything or not m.owner or not owner_alive(m.owner):
            unmount(m.mountpoint)
            gone.append(m)
    return gone


class FaultFS:
    """A mounted faultfs volume and its daemon. Use `FaultFS.mount(backing, mountpoint)`."""

    def __init__(
        self, mountpoint: str, backing: str, control: str, proc: subprocess.Popen, log: IO[bytes]
    ) -> None:
        self.mountpoint = mountpoint
        self.backing = backing
        self.control = control
        self.proc = proc
        self._log = log

    def daemon_log(self) -> str:
        """What the daemon wrote (libfuse's and mfusepy's complaints, Python tracebacks)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    @classmethod
    @contextmanager
    def mount(
        cls,
        backing: str | os.PathLike,
        mountpoint: str | os.PathLike,
        *,
        run_id: str = "adhoc",
        timeout: float = 15,
    ) -> Iterator[FaultFS]:
        """Mount `backing` at `mountpoint` through faultfs; unmount on leaving, whatever happens."""
        fs = cls.start(backing, mountpoint, run_id=run_id, timeout=timeout)
        try:
            yield fs
        finally:
            fs.close()

    @classmethod
    def start(
        cls,
        backing: str | os.PathLike,
        mountpoint: str | os.PathLike,
        *,
        run_id: str = "adhoc",
        timeout: float = 15,
    ) -> FaultFS:
        problem = fuse_problem()
        if problem:
            raise FaultFSError(problem)
        from harness.engine import owner_token

        backing, mountpoint = os.path.realpath(backing), os.path.realpath(mountpoint)
        os.makedirs(backing, exist_ok=True)
        os.makedirs(mountpoint, exist_ok=True)
        control = os.path.join(tempfile.mkdtemp(prefix="faultfs-"), "control.sock")
        argv = [sys.executable, "-m", "harness.faultfs", mountpoint, backing, "--control", control]
        argv += ["--run-id", run_id, "--owner", owner_token(), "--parent", str(os.getpid())]
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        fs = cls(mountpoint, backing, control, proc, log)

        def ready() -> bool:
            if proc.poll() is not None:
                out = fs.daemon_log().strip()
                raise Hopeless(f"faultfs daemon exited with {proc.returncode} before mounting: {out}")
            return fs.request("ping")["ok"] and any(m.mountpoint == mountpoint for m in faultfs_mounts())

        try:
            wait_until(ready, f"faultfs mounted at {mountpoint}", timeout=timeout)
        except (WaitTimeout, Hopeless) as e:
            fs.close()
            raise FaultFSError(str(e)) from None
        return fs

    # commands -----------------------------------------------------------------------------
    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            try:
                s.connect(self.control)
            except OSError as e:
                state = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
                raise FaultFSError(
                    f"faultfs {cmd}: no answer from the daemon of {self.mountpoint} ({state}): {e}"
                ) from None
            s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            with s.makefile("rb") as f:
                line = f.readline()
        if not line:
            raise FaultFSError(f"faultfs daemon at {self.control} closed the connection on {cmd}")
        resp = json.loads(line)
        if not resp.get("ok"):
            raise FaultFSError(f"faultfs {cmd}: {resp.get('error')}")
        return resp

    def lose(self) -> dict[str, Any]:
        """Drop every unsynced write (a power loss); returns dropped_bytes and files."""
        return self.request("lose")

    def fail(self, op: str = "all", prefix: str = "/") -> dict[str, Any]:
        """EIO on `op` (write, fsync, read or all) for paths under `prefix`, until `clear`."""
        return self.request("fail", op=op, prefix=prefix)

    def full(self, prefix: str = "/") -> dict[str, Any]:
        """ENOSPC on writes that grow a file under `prefix`, until `clear`."""
        return self.request("full", prefix=prefix)

    def slow(self, ms: int, prefix: str = "/") -> dict[str, Any]:
        """Each fsync under `prefix` takes `ms` milliseconds longer, until `clear`."""
        return self.request("slow", ms=ms, prefix=prefix)

    def clear(self) -> dict[str, Any]:
        """End every injected fault (unsynced data stays unsynced)."""
        return self.request("clear")

    def stats(self) -> dict[str, Any]:
        """The evidence: losses, lost_bytes, lost_files, failed per op, enospc, slowed, ..."""
        return self.request("stats")

    # teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Unmount (lazily when busy) and end the daemon. After a lazy unmount the daemon
        would serve the files still open until they close: it is told to stop instead."""
        lazy = True
        try:
            lazy = unmount(self.mountpoint)
        finally:
            # A plain unmount ends the daemon's loop at once; after a lazy one it would not.
            steps = [(None, 2.0)] if not lazy else []
            for stop, wait in (*steps, (signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
                if self.proc.poll() is not None:
                    break
                if stop is not None:
                    self.proc.send_signal(stop)
                try:
                    self.proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
            shutil.rmtree(os.path.dirname(self.control), ignore_errors=True)
            self._log.close()
