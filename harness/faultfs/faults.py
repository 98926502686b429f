"""The faults a faultfs volume is told to inject (EIO, ENOSPC, slow fsync) and the counts
of what they did, which the nemesis records as evidence."""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field

OPS = ("write", "fsync", "read")


def _under(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or inside it ("/" and "" mean every path)."""
    prefix = "/" + prefix.strip("/")
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


@dataclass
class Counts:
    losses: int = 0
    lost_bytes: int = 0
    lost_files: int = 0
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPS, 0))
    enospc: int = 0
    slowed: int = 0
    fsyncs: int = 0


class Faults:
    """Active faults; each stays until `clear`. Thread-safe: FUSE calls come from many threads
    and commands from the control socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: set[tuple[str, str]] = set()  # (op, prefix)
        self._full: set[str] = set()  # prefixes
        self._slow: dict[str, int] = {}  # prefix -> ms
        self.counts = Counts()

    def fail(self, op: str, prefix: str = "/") -> None:
        """EIO on `op` ("write", "fsync", "read" or "all") for paths under `prefix`."""
        ops = OPS if op == "all" else (op,)
        if any(o not in OPS for o in ops):
            raise ValueError(f"fail: op must be one of {', '.join(OPS)} or all, not {op!r}")
        with self._lock:
            self._fail.update((o, prefix) for o in ops)

    def full(self, prefix: str = "/") -> None:
        """ENOSPC on writes and truncates that grow a file under `prefix`."""
        with self._lock:
            self._full.add(prefix)

    def slow(self, ms: int, prefix: str = "/") -> None:
        """Every fsync under `prefix` takes `ms` milliseconds longer."""
        if ms < 0:
            raise ValueError(f"slow: ms must be >= 0, not {ms}")
        with self._lock:
            self._slow[prefix] = int(ms)

    def clear(self) -> None:
        with self._lock:
            self._fail.clear()
            self._full.clear()
            self._slow.clear()

    def active(self) -> dict:
        with self._lock:
            return {
                "fail": sorted([op, p] for op, p in self._fail),
                "full": sorted(self._full),
                "slow": dict(sorted(self._slow.items())),
            }

    def check(self, op: str, path: str) -> None:
        """Raise EIO when `op` on `path` is told to fail (and count it)."""
        with self._lock:
            if op == "fsync":
                self.counts.fsyncs += 1
            if any(o == op and _under(path, p) for o, p in self._fail):
                self.counts.failed[op] += 1
                raise OSError(errno.EIO, f"faultfs: {op} fails (injected)", path)

    def check_growth(self, path: str, old_size: int, new_size: int) -> None:
        """Raise ENOSPC when a write or truncate would grow `path` while its disk is full."""
        if new_size <= old_size:
            return
        with self._lock:
            if any(_under(path, p) for p in self._full):
                self.counts.enospc += 1
                raise OSError(errno.ENOSPC, "faultfs: no space left (injected)", path)

    def fsync_delay(self, path: str) -> float:
        """Seconds the next fsync of `path` waits (the longest delay of the prefixes over it)."""
        with self._lock:
            ms = max((v for p, v in self._slow.items() if _under(path, p)), default=0)
            if ms:
                self.counts.slowed += 1
            return ms / 1000.0
