"""A container's processes frozen and thawed through its cgroup's freezer: the file the engine's pause
writes too (runc does), without the trip through dockerd, containerd, the shim and a runc process of its
own. Here, on an idle machine, the engine's pause answered in 14 ms (median of 15; 29 ms at most) and the
freezer took 0.45 ms; under load the engine's path waits its turn at every hop (a pause took 66 and
139 ms to apply during the soak at 200 intents/s).

Both cgroup versions: v1's freezer hierarchy (`freezer.state`: FROZEN, FREEZING, THAWED) and v2's
`cgroup.freeze` with `cgroup.events` saying `frozen 1` once every process is stopped. The engine is not
told, so it still reports such a container `running`; `ContainerControl` keeps track of what it froze."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TopologyError

CGROUP_ROOT = Path("/sys/fs/cgroup")
FREEZE_TIMEOUT_S = 5.0
POLL_S = 0.0002  # between reads of the state while the kernel stops the processes


@dataclass(frozen=True)
class Freezer:
    folder: Path  # the container's cgroup folder in the freezer's hierarchy
    v2: bool

    @classmethod
    def of(cls, pid: int, root: Path = CGROUP_ROOT) -> Freezer | None:
        """The freezer of the cgroup process `pid` is in, as this machine's /proc shows it; None when there
        is none to write (no such process, no freezer mounted, or not writable)."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        found = cls.in_cgroup(lines, root)
        return found if found is not None and found._control.is_file() and found._state.is_file() else None

    @classmethod
    def in_cgroup(cls, lines: list[str], root: Path = CGROUP_ROOT) -> Freezer | None:
        """Where the freezer of a process with these /proc/PID/cgroup lines would be: v1's freezer
        hierarchy when it is mounted, else v2's unified one (alone at the root: a hybrid machine's unified/
        is not looked at, and the engine pauses)."""
        entries = [ln.split(":", 2) for ln in lines if ln.count(":") >= 2]
        for _, controllers, path in entries:
            if "freezer" in controllers.split(","):
                return cls(root / "freezer" / path.lstrip("/"), v2=False)
        unified = next((path for _, controllers, path in entries if controllers == ""), None)
        return None if unified is None else cls(root / unified.lstrip("/"), v2=True)

    @property
    def _control(self) -> Path:
        return self.folder / ("cgroup.freeze" if self.v2 else "freezer.state")

    @property
    def _state(self) -> Path:
        return self.folder / ("cgroup.events" if self.v2 else "freezer.state")

    def frozen(self) -> bool:
        text = self._state.read_text()
        return "frozen 1" in text.splitlines() if self.v2 else text.strip() == "FROZEN"

    def freeze(self, timeout: float = FREEZE_TIMEOUT_S) -> None:
        """Stop every process of the cgroup; returns once the kernel says all are stopped. A process in an
        uninterruptible wait holds v1 in FREEZING: the write is repeated, as runc does, until the deadline,
        then the cgroup is thawed again and the failure raised."""
        deadline = time.monotonic() + timeout
        while True:
            self._control.write_text("1" if self.v2 else "FROZEN")
            if self.frozen():
                return
            if time.monotonic() > deadline:
                self.thaw()
                raise TopologyError(f"{self.folder} did not freeze within {timeout:g} s")
            time.sleep(POLL_S)

    def thaw(self) -> None:
        self._control.write_text("0" if self.v2 else "THAWED")
