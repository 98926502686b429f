"""faultfs's volume against a reference model: random writes, truncates, renames, unlinks and
fsyncs on a few files read back as the reference says; after `lose` every file is what its
last fsync left. No FUSE here: the volume is called as the FUSE binding calls it."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from harness.faultfs.faults import Faults
from harness.faultfs.volume import Volume

NAMES = ["a", "b", "c", "d/e"]


class Inode:
    def __init__(self) -> None:
        self.data = bytearray()  # what the application sees
        self.synced = b""  # what survives a power loss


class VolumeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="faultfs-model-")
        os.mkdir(os.path.join(self.dir, "d"))
        self.vol = Volume(self.dir, backing_fsync=False)
        self.files: dict[str, Inode] = {}
        self.held: dict[str, int] = {}  # a handle kept open across operations, per name
        self.dropped = 0

    def teardown(self) -> None:
        for fh in self.held.values():
            self.vol.release(fh)
        self.vol.lose()
        shutil.rmtree(self.dir)

    def _open(self, name: str, flags: int = os.O_RDWR) -> int:
        return self.vol.open("/" + name, flags)

    def _unsynced(self) -> int:
        return self.vol.stats()["unsynced_bytes"]

    @rule(name=st.sampled_from(NAMES))
    def create(self, name: str) -> None:
        if name in self.files:
            return
        fh = self.vol.open("/" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self.vol.release(fh)
        self.files[name] = Inode()

    @precondition(lambda self: self.files)
    @rule(data=st.data(), offset=st.integers(0, 300), payload=st.binary(min_size=1, max_size=120))
    def write(self, data: st.DataObject, offset: int, payload: bytes) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        mode = data.draw(st.sampled_from(["plain", "append", "sync", "held"]))
        f = self.files[name]
        if mode == "held":
            fh = self.held.get(name) or self.held.setdefault(name, self._open(name))
        else:
            flags = os.O_RDWR | {"plain": 0, "append": os.O_APPEND, "sync": os.O_SYNC}[mode]
            fh = self._open(name, flags)
        assert self.vol.write(fh, payload, offset) == len(payload)
        if mode == "append":
            offset = len(f.data)
        if len(f.data) < offset:
            f.data.extend(bytes(offset - len(f.data)))
        f.data[offset : offset + len(payload)] = payload
        if mode == "sync":
            f.synced = bytes(f.data)
        if mode != "held":
            self.vol.release(fh)

    @precondition(lambda self: self.files)
    @rule(data=st.data(), length=st.integers(0, 400))
    def truncate(self, data: st.DataObject, length: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        f = self.files[name]
        if data.draw(st.booleans()):
            self.vol.truncate("/" + name, length)
        else:  # open(O_TRUNC) then grow: the cut-off bytes must not come back
            fh = self._open(name, os.O_RDWR | os.O_TRUNC)
            self.vol.truncate("/" + name, length, fh)
            self.vol.release(fh)
            f.data.clear()
        del f.data[length:]
        f.data.extend(bytes(length - len(f.data)))

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def fsync(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        fh = self._open(name, os.O_RDONLY)  # fsync through any handle persists the file
        self.vol.fsync(fh)
        self.vol.release(fh)
        self.files[name].synced = bytes(self.files[name].data)

    @precondition(lambda self: self.files)
    @rule(data=st.data(), new=st.sampled_from(NAMES))
    def rename(self, data: st.DataObject, new: str) -> None:
        old = data.draw(st.sampled_from(sorted(self.files)))
        if old == new:
            return
        self._drop_held(old)
        self._drop_held(new)
        self.vol.rename("/" + old, "/" + new)
        self.files[new] = self.files.pop(old)  # unsynced data follows the file

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def unlink(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.files)))
        self._drop_held(name)
        self.vol.unlink("/" + name)
        del self.files[name]

    @rule()
    def lose(self) -> None:
        before = self._unsynced()
        got = self.vol.lose()
        assert got["dropped_bytes"] == before
        self.dropped += before
        for name, f in self.files.items():
            assert self._content(name) == f.synced, f"{name} after lose is not its last synced content"
            f.data = bytearray(f.synced)

    def _drop_held(self, name: str) -> None:
        fh = self.held.pop(name, None)
        if fh is not None:
            self.vol.release(fh)

    def _content(self, name: str) -> bytes:
        fh = self._open(name, os.O_RDONLY)
        try:
            size = self.vol.getattr("/" + name)["st_size"]
            assert self.vol.getattr(None, fh)["st_size"] == size
            return self.vol.read(fh, size + 10, 0)
        finally:
            self.vol.release(fh)

    @invariant()
    def reads_see_every_write(self) -> None:
        for name, f in self.files.items():
            assert self._content(name) == bytes(f.data), f"{name} does not read back what was written"

    @invariant()
    def backing_holds_only_synced_data(self) -> None:
        for name, f in self.files.items():
            with open(os.path.join(self.dir, name), "rb") as fp:
                assert fp.read() == f.synced, f"{name}: the backing file holds unsynced data"
        assert self.vol.stats()["lost_bytes"] == self.dropped


VolumeMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestVolumeModel = VolumeMachine.TestCase


@pytest.fixture
def vol(tmp_path):
    return Volume(str(tmp_path), backing_fsync=False)


def test_fail_write_fsync_read_under_a_prefix_until_clear(vol, tmp_path):
    (tmp_path / "data").mkdir()
    fh = vol.open("/data/f", os.O_RDWR | os.O_CREAT, 0o644)
    other = vol.open("/other", os.O_RDWR | os.O_CREAT, 0o644)
    vol.faults.fail("all", "/data")
    for call in (lambda: vol.write(fh, b"x", 0), lambda: vol.fsync(fh), lambda: vol.read(fh, 1, 0)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EIO
    assert vol.write(other, b"fine", 0) == 4  # outside the prefix
    vol.fsync(other)
    assert vol.stats()["failed"] == {"write": 1, "fsync": 1, "read": 1}
    vol.faults.clear()
    assert vol.write(fh, b"x", 0) == 1


def test_failed_fsync_keeps_the_data_unsynced(vol, tmp_path):
    fh = vol.open("/f", os.O_RDWR | os.O_CREAT, 0o644)
    vol.write(fh, b"abc", 0)
    vol.faults.fail("fsync")
    with pytest.raises(OSError):
        vol.fsync(fh)
    assert (tmp_path / "f").read_bytes() == b""
    assert vol.lose()["dropped_bytes"] == 3
    assert vol.read(fh, 10, 0) == b""


def test_full_refuses_growth_only(vol):
    fh = vol.open("/f", os.O_RDWR | os.O_CREAT, 0o644)
    vol.write(fh, b"0123456789", 0)
    vol.faults.full()
    assert vol.write(fh, b"ab", 2) == 2  # overwrite in place: no new space
    for grow in (lambda: vol.write(fh, b"x", 10), lambda: vol.truncate("/f", 20)):
        with pytest.raises(OSError) as e:
            grow()
        assert e.value.errno == errno.ENOSPC
    vol.truncate("/f", 4)  # shrinking frees space
    assert vol.stats()["enospc"] == 2
    assert vol.read(fh, 100, 0) == b"01ab"


def test_slow_fsync_is_counted_and_takes_its_time(vol):
    import time

    fh = vol.open("/f", os.O_RDWR | os.O_CREAT, 0o644)
    vol.faults.slow(50)
    t = time.monotonic()
    vol.fsync(fh)
    assert time.monotonic() - t >= 0.05
    assert vol.stats()["slowed"] == 1


def test_prefix_matches_whole_path_components():
    f = Faults()
    f.fail("write", "/data")
    f.check("write", "/database/x")  # not under /data
    with pytest.raises(OSError):
        f.check("write", "/data/x")
    with pytest.raises(ValueError):
        f.fail("flush")


def test_faultfs_mounts_reads_mountinfo(tmp_path):
    from harness.faultfs.control import faultfs_mounts

    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "241 27 0:80 / /tmp/run\\040one/m rw,nosuid,nodev,relatime - fuse.faultfs "
        "faultfs:20261201-101500-abc123:vm:10041:4342222 rw,user_id=0,group_id=0,allow_other\n"
        "250 27 0:81 / /mnt/other rw - fuse.sshfs host:/ rw\n"
    )
    [m] = faultfs_mounts(str(info))
    assert m.mountpoint == "/tmp/run one/m"
    assert (m.run_id, m.owner) == ("20261201-101500-abc123", "vm:10041:4342222")


def test_fuse_problem_names_the_fix(monkeypatch):
    from harness.faultfs import control

    monkeypatch.setattr(control.shutil, "which", lambda name: None)
    problem = control.fuse_problem()
    assert problem is not None and "fusermount3" in problem and "apt-get install fuse3" in problem


def test_stat_shows_unsynced_size_and_mtime(vol, tmp_path):
    import time

    fh = vol.open("/f", os.O_RDWR | os.O_CREAT, 0o644)
    os.utime(tmp_path / "f", ns=(0, 0))
    before = time.time_ns()
    vol.write(fh, b"12345", 0)
    attrs = vol.getattr("/f")
    assert attrs["st_size"] == 5 and attrs["st_mtime"] >= before
    assert os.stat(tmp_path / "f").st_size == 0  # the disk has not seen it


def test_an_fsync_under_way_when_power_is_lost_fails(vol, tmp_path):
    """It must not report durable the data the loss dropped."""
    import threading

    fh = vol.open("/f", os.O_RDWR | os.O_CREAT, 0o644)
    vol.write(fh, b"in flight", 0)
    vol.faults.slow(300)
    got: list[BaseException | None] = []

    def sync() -> None:
        try:
            vol.fsync(fh)
            got.append(None)
        except OSError as e:
            got.append(e)

    t = threading.Thread(target=sync)
    t.start()
    from harness.waiting import wait_until

    wait_until(lambda: vol.stats()["slowed"] == 1, "the fsync under way")
    vol.lose()
    t.join()
    assert isinstance(got[0], OSError) and got[0].errno == errno.EIO
    assert (tmp_path / "f").read_bytes() == b""
