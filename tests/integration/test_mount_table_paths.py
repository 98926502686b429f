"""A real faultfs mount at a path the mount table escapes (a space, é, a newline) or holds in bytes that are
not UTF-8: the harness finds it under the path it mounted at, and unmounts it. Needs /dev/fuse,
fusermount3 and mfusepy (it fails with the install step, never skips)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.faultfs.control import FaultFS, faultfs_mounts, fuse_problem


@pytest.mark.parametrize(
    "name",
    [b"caf\xc3\xa9 mnt", b"bad\xff\xfe", b"line\nbreak\\101", b"\xe6\x97\xa5\xe6\x9c\xac\tx"],
    ids=["utf8-and-space", "not-utf8", "newline-and-backslash", "cjk-and-tab"],
)
def test_a_mount_at_an_escaped_or_non_utf8_path_is_found_and_unmounted(tmp_path: Path, name: bytes) -> None:
    problem = fuse_problem()
    assert problem is None, problem
    mnt = os.fsdecode(os.fsencode(tmp_path) + b"/" + name)
    with FaultFS.mount(tmp_path / "backing", mnt, run_id="test-odd-path") as fs:
        assert fs.mountpoint == mnt
        mine = [
            m
            for m in faultfs_mounts()
            if m.run_id == "test-odd-path" and m.mountpoint.startswith(str(tmp_path))
        ]
        assert [m.mountpoint for m in mine] == [mnt]
        with open(os.path.join(mnt, "f"), "wb") as f:  # the mount answers under that name
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())  # faultfs keeps unsynced data from the backing files
    assert not [m for m in faultfs_mounts() if m.mountpoint == mnt], (
        "close() did not find the mount to unmount"
    )
    assert (tmp_path / "backing" / "f").read_bytes() == b"x"
