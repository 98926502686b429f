"""One file's unsynced data: what was written or truncated since its last fsync, kept in
memory over the file's backing content (the last synced state) until persisted or lost."""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable


class Unsynced:
    """The file as the application sees it = the backing file below `floor`, zeros from there
    to `size`, with the written extents on top. The backing file is never touched until
    `persist`; `floor` hides the backing bytes a truncate cut off, so a truncate followed by
    a growth reads zeros there, as on a real file system."""

    def __init__(self, fd: int, backing_size: int) -> None:
        self.fd = fd  # an O_RDWR descriptor of the backing file, owned by this object
        self.size = backing_size
        self.floor = backing_size
        self._starts: list[int] = []
        self._bufs: list[bytearray] = []
        self.mtime_ns = time.time_ns()  # of the last change, what stat shows until persisted

    @property
    def unsynced_bytes(self) -> int:
        """Bytes written since the last fsync and still held here (what `lose` drops)."""
        return sum(len(b) for b in self._bufs)

    @property
    def extents(self) -> list[tuple[int, bytes]]:
        return [(s, bytes(b)) for s, b in zip(self._starts, self._bufs, strict=True)]

    def write(self, offset: int, data: bytes) -> None:
        if not data:
            return
        end = offset + len(data)
        # Extents touching [offset, end] (adjacent ones too) merge into one, so a file
        # written in appends holds one growing buffer.
        lo = bisect.bisect_right(self._starts, offset) - 1
        if lo < 0 or self._starts[lo] + len(self._bufs[lo]) < offset:
            lo += 1
        hi = bisect.bisect_right(self._starts, end)
        if lo == hi:
            self._starts.insert(lo, offset)
            self._bufs.insert(lo, bytearray(data))
        else:
            start = min(offset, self._starts[lo])
            buf = self._bufs[lo]
            if start < self._starts[lo]:
                buf = bytearray(self._starts[lo] - start) + buf
            last_end = self._starts[hi - 1] + len(self._bufs[hi - 1])
            total = max(end, last_end) - start
            if len(buf) < total:
                buf.extend(bytes(total - len(buf)))
            for s, b in zip(self._starts[lo + 1 : hi], self._bufs[lo + 1 : hi], strict=True):
                buf[s - start : s - start + len(b)] = b
            buf[offset - start : end - start] = data
            self._starts[lo:hi] = [start]
            self._bufs[lo:hi] = [buf]
        self.size = max(self.size, end)
        self.mtime_ns = time.time_ns()

    def truncate(self, length: int) -> None:
        if length < self.size:
            self.floor = min(self.floor, length)
            keep = bisect.bisect_left(self._starts, length)
            del self._starts[keep:], self._bufs[keep:]
            if self._bufs:
                del self._bufs[-1][length - self._starts[-1] :]  # it starts below length
        self.size = length
        self.mtime_ns = time.time_ns()

    def read(self, offset: int, count: int, backing: Callable[[int, int], bytes]) -> bytes:
        """`count` bytes at `offset` (fewer at the end of the file); `backing(offset, n)`
        reads the backing file."""
        count = max(0, min(count, self.size - offset))
        if count == 0:
            return b""
        end = offset + count
        out = bytearray(count)
        visible = min(end, self.floor)
        if offset < visible:
            got = backing(offset, visible - offset)
            out[: len(got)] = got
        i = max(0, bisect.bisect_right(self._starts, offset) - 1)
        while i < len(self._starts) and self._starts[i] < end:
            s, b = self._starts[i], self._bufs[i]
            lo, hi = max(s, offset), min(s + len(b), end)
            if lo < hi:
                out[lo - offset : hi - offset] = b[lo - s : hi - s]
            i += 1
        return bytes(out)

    def persist(self) -> None:
        """Write the unsynced state into the backing file (the caller fsyncs it)."""
        if self.floor < os.fstat(self.fd).st_size:
            os.ftruncate(self.fd, self.floor)
        for s, b in zip(self._starts, self._bufs, strict=True):
            view = memoryview(b)
            done = 0
            while done < len(b):
                done += os.pwrite(self.fd, view[done:], s + done)
        os.ftruncate(self.fd, self.size)
        self.floor = self.size
        self._starts.clear()
        self._bufs.clear()
