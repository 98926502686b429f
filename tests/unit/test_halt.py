"""ContainerControl.halt when the node's cgroup will not freeze: the failure is raised, and the pidfd
opened for the SIGKILL is not left open (a pure-logic test: a real child process stands in for the
container's main process, a freezer that times out for the cgroup's)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from harness.errors import TopologyError
from harness.nemesis import containers
from harness.nemesis.containers import ContainerControl


class StuckFreezer:
    def freeze(self, timeout: float = 5.0) -> None:
        raise TopologyError("did not freeze within 5 s")


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_halt_whose_freeze_fails_closes_its_pidfd(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ctl = ContainerControl(SimpleNamespace(nodes=["nats"]))  # type: ignore[arg-type]
        ctl._pids["nats"] = child.pid
        monkeypatch.setattr(ctl, "_container", lambda node: SimpleNamespace(id="c0ffee"))
        monkeypatch.setattr(containers, "is_main_process", lambda pid, cid: pid == child.pid)

        async def stuck(node: str) -> StuckFreezer:
            return StuckFreezer()

        monkeypatch.setattr(ctl, "_freezer", stuck)
        before = open_fds()
        with pytest.raises(TopologyError, match="did not freeze"):
            asyncio.run(ctl.halt("nats"))
        assert open_fds() - before == set()
        assert child.poll() is None  # not killed: the fault did not take effect
    finally:
        child.kill()
        child.wait()
