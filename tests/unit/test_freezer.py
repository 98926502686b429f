"""The freezer's bookkeeping on cgroup folders made of plain files (the kernel's own is exercised by
tests/integration/test_nemesis.py): where a container's freezer is for either cgroup version, which file is
written, what counts as frozen, and a freeze that never completes is thawed again and reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import TopologyError
from harness.nemesis.freezer import Freezer

DOCKER = "/docker/4f1c0ffee"
V1 = ["9:name=systemd:" + DOCKER, "6:freezer:" + DOCKER, "1:cpu,cpuacct:" + DOCKER, "0::/"]
V2 = ["0::/system.slice/docker-4f1c0ffee.scope"]


def test_where_the_freezer_is_under_cgroup_v1_and_v2(tmp_path: Path) -> None:
    assert Freezer.in_cgroup(V1, tmp_path) == Freezer(tmp_path / "freezer/docker/4f1c0ffee", v2=False)
    assert Freezer.in_cgroup(V2, tmp_path) == Freezer(
        tmp_path / "system.slice/docker-4f1c0ffee.scope", v2=True
    )
    assert Freezer.in_cgroup(["6:memory:" + DOCKER], tmp_path) is None
    assert Freezer.in_cgroup([], tmp_path) is None


def test_a_v1_freeze_writes_frozen_and_a_thaw_thawed(tmp_path: Path) -> None:
    freezer = Freezer.in_cgroup(V1, tmp_path)
    freezer.folder.mkdir(parents=True)
    (freezer.folder / "freezer.state").write_text("THAWED\n")

    freezer.freeze()
    assert (freezer.folder / "freezer.state").read_text() == "FROZEN" and freezer.frozen()
    freezer.thaw()
    assert (freezer.folder / "freezer.state").read_text() == "THAWED" and not freezer.frozen()


def test_a_v2_freeze_waits_for_the_kernel_and_gives_up_thawed(tmp_path: Path) -> None:
    freezer = Freezer.in_cgroup(V2, tmp_path)
    freezer.folder.mkdir(parents=True)
    (freezer.folder / "cgroup.freeze").write_text("0\n")
    (freezer.folder / "cgroup.events").write_text("populated 1\nfrozen 0\n")

    with pytest.raises(TopologyError, match="did not freeze within 0.05 s"):
        freezer.freeze(timeout=0.05)  # nothing here plays the kernel: cgroup.events never says frozen
    assert (freezer.folder / "cgroup.freeze").read_text() == "0"

    (freezer.folder / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    freezer.freeze()
    assert (freezer.folder / "cgroup.freeze").read_text() == "1" and freezer.frozen()


def test_no_freezer_for_a_process_that_is_gone_or_without_the_files(tmp_path: Path) -> None:
    assert Freezer.of(2**22 + 1, root=tmp_path) is None  # above pid_max's ceiling: no such process
    assert Freezer.of(os.getpid(), root=tmp_path) is None  # no freezer file under this root
