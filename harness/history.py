"""The history: every client and nemesis operation of a run, one JSON object per line,
in time order, `t` in seconds since the scenario's start (docs/run-format.md)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO


class History:
    def __init__(self, path: Path, t0: float | None = None) -> None:
        self.path = path
        self.t0 = time.monotonic() if t0 is None else t0
        self._f: TextIO = open(path, "a", buffering=1)  # line-buffered: a crash loses no whole line
        self.counts: dict[str, int] = {}
        # The load records on the harness's loop, the nemesis on its own thread (nemesis.own_loop): a line
        # is stamped and written under the lock, so the file stays in `t` order and no line is torn.
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def record(self, op: dict[str, Any]) -> dict[str, Any]:
        """Stamp `op` with the time it is recorded (the moment it took effect) and append it."""
        key = f"{op.get('type')}:{op.get('outcome', '')}" if op.get("process") != "nemesis" else "nemesis"
        with self._lock:
            op = {"t": round(self.now(), 6), **op}
            self._f.write(json.dumps(op, separators=(",", ":")) + "\n")
            self.counts[key] = self.counts.get(key, 0) + 1
        return op

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
