"""faultfs through the kernel: a real FUSE mount, written with os.write as NATS or an agent
would; unsynced data lost on `lose`, EIO and ENOSPC seen by the writer, and no mount outliving
the process that made it. Needs /dev/fuse, fusermount3 and mfusepy: without them these tests
fail with the install step, they never skip."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.faultfs.control import FaultFS, faultfs_mounts, fuse_problem, unmount_leftovers
from harness.waiting import wait_until


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[FaultFS]:
    problem = fuse_problem()
    assert problem is None, problem
    with FaultFS.mount(tmp_path / "backing", tmp_path / "mnt", run_id="test-faultfs") as m:
        yield m
    assert not any(x.mountpoint == m.mountpoint for x in faultfs_mounts()), "close() left the mount"


def write(path: str, data: bytes, *, sync: bool = False, flags: int = 0) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_lose_drops_unsynced_writes_and_keeps_synced_ones(fs: FaultFS) -> None:
    m = fs.mountpoint
    write(f"{m}/log", b"synced;", sync=True)
    write(f"{m}/log", b"unsynced", flags=os.O_APPEND)
    write(f"{m}/new", b"never synced")
    write(f"{m}/osync", b"O_SYNC write", flags=os.O_SYNC)
    held = os.open(f"{m}/log", os.O_RDONLY)  # a reader that stays open across the loss
    assert read(f"{m}/log") == b"synced;unsynced"
    assert os.stat(f"{m}/log").st_size == 15
    assert read(f"{fs.backing}/log") == b"synced;", "unsynced data reached the backing directory"

    dropped = fs.lose()
    assert dropped["dropped_bytes"] == len(b"unsynced") + len(b"never synced")
    assert read(f"{m}/log") == b"synced;"
    assert os.pread(held, 100, 0) == b"synced;", "the kernel served data faultfs dropped"
    os.close(held)
    assert os.stat(f"{m}/log").st_size == 7
    assert read(f"{m}/new") == b"", "a never-synced file keeps its name and loses its data"
    assert read(f"{m}/osync") == b"O_SYNC write"
    stats = fs.stats()
    assert (stats["losses"], stats["lost_bytes"], stats["lost_files"]) == (1, 20, 2)


def test_rename_is_durable_and_carries_unsynced_data(fs: FaultFS) -> None:
    m = fs.mountpoint
    os.mkdir(f"{m}/dir")
    write(f"{m}/dir/meta.tmp", b"meta", sync=True)
    os.rename(f"{m}/dir/meta.tmp", f"{m}/dir/meta")
    d = os.open(f"{m}/dir", os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(d)  # the classic write-fsync-rename-fsync(dir): survives
    os.close(d)
    write(f"{m}/dir/blk.tmp", b"unsynced block")
    os.rename(f"{m}/dir/blk.tmp", f"{m}/dir/blk")  # renamed without fsync of its data
    fs.lose()
    assert sorted(os.listdir(f"{m}/dir")) == ["blk", "meta"]
    assert read(f"{m}/dir/meta") == b"meta"
    assert read(f"{m}/dir/blk") == b"", "the renamed file's unsynced data must be lost"


def test_an_unlinked_open_file_still_works_through_its_descriptor(fs: FaultFS) -> None:
    path = f"{fs.mountpoint}/tmp"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"abc")
    os.unlink(path)
    assert os.listdir(fs.backing) == [], "unlink left a file in the backing directory"
    os.pwrite(fd, b"Z", 1)
    os.ftruncate(fd, 2)
    assert os.pread(fd, 10, 0) == b"aZ"
    os.fsync(fd)
    os.close(fd)
    assert fs.stats()["unsynced_files"] == 0


def test_fsync_eio_is_seen_by_the_writer_and_the_data_stays_unsynced(fs: FaultFS) -> None:
    path = f"{fs.mountpoint}/seg"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"acked?")
    fs.fail("fsync")
    for sync in (os.fsync, os.fdatasync):
        with pytest.raises(OSError) as e:
            sync(fd)
        assert e.value.errno == errno.EIO
    assert os.pread(fd, 10, 0) == b"acked?"
    d = os.open(fs.mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    with pytest.raises(OSError) as e:
        os.fsync(d)  # a directory's fsync fails alike
    os.close(d)
    assert e.value.errno == errno.EIO
    fs.clear()
    os.fsync(fd)
    os.close(fd)
    fs.lose()
    assert read(path) == b"acked?"
    assert fs.stats()["failed"]["fsync"] == 3


def test_write_and_read_eio_only_under_the_prefix(fs: FaultFS) -> None:
    m = fs.mountpoint
    os.mkdir(f"{m}/nats")
    write(f"{m}/nats/blk", b"old", sync=True)
    fs.fail("write", "/nats")
    with pytest.raises(OSError) as e:
        write(f"{m}/nats/blk", b"new")
    assert e.value.errno == errno.EIO
    write(f"{m}/journal", b"elsewhere is fine")
    fs.fail("read", "/nats")
    with pytest.raises(OSError) as e:
        read(f"{m}/nats/blk")
    assert e.value.errno == errno.EIO
    fs.clear()
    assert read(f"{m}/nats/blk") == b"old"


def test_full_disk_refuses_growth_with_enospc(fs: FaultFS) -> None:
    path = f"{fs.mountpoint}/f"
    write(path, b"0123456789", sync=True)
    fs.full()
    fd = os.open(path, os.O_RDWR)
    assert os.pwrite(fd, b"ab", 0) == 2
    with pytest.raises(OSError) as e:
        os.pwrite(fd, b"more", 10)
    assert e.value.errno == errno.ENOSPC
    os.close(fd)
    assert fs.stats()["enospc"] == 1


def test_slow_fsync(fs: FaultFS) -> None:
    fd = os.open(f"{fs.mountpoint}/f", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"x")
    fs.slow(300)
    t = time.monotonic()
    os.fsync(fd)
    took = time.monotonic() - t
    os.close(fd)
    assert took >= 0.3, f"fsync took {took:.3f} s with slow(300)"
    assert fs.stats()["slowed"] == 1


def test_other_uids_use_the_mount(fs: FaultFS) -> None:
    """allow_other: a container's process runs as another uid; default_permissions applies modes."""
    if os.geteuid() != 0:
        pytest.skip("acting as another uid needs root (the harness runs as root; CI's runner does not)")
    os.mkdir(f"{fs.mountpoint}/shared", 0o777)
    os.chmod(f"{fs.mountpoint}/shared", 0o777)
    # cwd is entered before the uid changes, so the path above the mount need not be open to nobody
    sh = ["/bin/sh", "-c", "echo from nobody > shared/x"]
    r = subprocess.run(sh, cwd=fs.mountpoint, user=65534, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.stat(f"{fs.mountpoint}/shared/x").st_uid == 65534
    write(f"{fs.mountpoint}/private", b"root only")
    os.chmod(f"{fs.mountpoint}/private", 0o600)
    r = subprocess.run(["cat", "private"], cwd=fs.mountpoint, user=65534, capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_busy_mount_is_unmounted_on_close(tmp_path: Path) -> None:
    with FaultFS.mount(tmp_path / "b", tmp_path / "m", run_id="test-busy") as fs:
        fd = os.open(f"{fs.mountpoint}/open", os.O_RDWR | os.O_CREAT, 0o644)
        t = time.monotonic()
    took = time.monotonic() - t
    assert not any(x.mountpoint == fs.mountpoint for x in faultfs_mounts())
    assert fs.proc.poll() is not None, "the daemon outlived its unmount"
    assert took < 8, f"closing a busy mount took {took:.1f} s"
    with contextlib.suppress(OSError):  # ENOTCONN: its file system is gone
        os.close(fd)


CHILD = """
import sys, time
from harness.faultfs.control import FaultFS
fs = FaultFS.start(sys.argv[1], sys.argv[2], run_id=sys.argv[3])
print(fs.proc.pid, flush=True)
time.sleep(600)
"""


def _mount_in_child(tmp_path: Path, run_id: str) -> tuple[subprocess.Popen, int, str]:
    mnt = str(tmp_path / "m")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "b"), mnt, run_id], stdout=subprocess.PIPE, text=True
    )
    line = child.stdout.readline()
    assert line.strip().isdigit(), f"the child did not mount (exit {child.poll()})"
    assert any(m.mountpoint == mnt and m.run_id == run_id for m in faultfs_mounts())
    return child, int(line), mnt


def test_a_killed_harness_leaves_no_mount(tmp_path: Path) -> None:
    """Even a busy one: a process (a container's, say) still holds a file open in it."""
    child, daemon, mnt = _mount_in_child(tmp_path, "test-killed")
    held = os.open(f"{mnt}/held", os.O_RDWR | os.O_CREAT, 0o644)
    child.kill()
    child.wait()
    wait_until(lambda: not any(m.mountpoint == mnt for m in faultfs_mounts()), f"{mnt} unmounted", timeout=5)
    wait_until(lambda: not os.path.exists(f"/proc/{daemon}"), f"daemon {daemon} gone", timeout=5)
    with contextlib.suppress(OSError):
        os.close(held)


def test_clean_unmounts_what_a_dead_run_left(tmp_path: Path) -> None:
    """Daemon and harness both SIGKILLed: the mount stays (ENOTCONN) until unmount_leftovers."""
    child, daemon, mnt = _mount_in_child(tmp_path, "test-leftover")
    os.kill(daemon, signal.SIGKILL)
    child.kill()
    child.wait()
    with pytest.raises(OSError) as e:
        os.listdir(mnt)
    assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)  # a dead mount, whichever
    assert any(m.mountpoint == mnt for m in faultfs_mounts())
    gone = unmount_leftovers()
    assert [m.run_id for m in gone if m.mountpoint == mnt] == ["test-leftover"]
    assert not any(m.mountpoint == mnt for m in faultfs_mounts())
    assert os.listdir(mnt) == []


def test_slow_fsync_of_one_file_does_not_stall_the_others(fs: FaultFS) -> None:
    """Many FUSE threads: a disk slow to sync still serves other files meanwhile."""
    import threading

    slow_fd = os.open(f"{fs.mountpoint}/slow", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(slow_fd, b"x")
    fs.slow(1500)
    syncing = threading.Thread(target=os.fsync, args=(slow_fd,))
    syncing.start()
    wait_until(lambda: fs.stats()["slowed"] == 1, "the slow fsync under way", timeout=5)
    t = time.monotonic()
    write(f"{fs.mountpoint}/other", b"meanwhile")
    assert read(f"{fs.mountpoint}/other") == b"meanwhile"
    took = time.monotonic() - t
    assert syncing.is_alive(), "the slow fsync ended before the other file was used"
    syncing.join()
    os.close(slow_fd)
    assert took < 1.0, f"writing another file waited {took:.2f} s behind a slow fsync"


def test_sqlite_commits_survive_a_power_loss_only_when_synced(fs: FaultFS) -> None:
    """SQLite (rollback journal): commits made with synchronous=FULL all survive `lose`; those
    made with synchronous=OFF, acknowledged all the same, are lost; the database stays intact.
    The NATS default-sync bug in miniature."""
    import sqlite3

    db = f"{fs.mountpoint}/app.db"

    def commit(keys: range, synchronous: str) -> None:
        con = sqlite3.connect(db, isolation_level=None)
        con.execute("PRAGMA journal_mode=DELETE")  # WAL maps its index: no shared mmap here
        con.execute(f"PRAGMA synchronous={synchronous}")
        con.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
        for k in keys:
            con.execute("INSERT INTO t VALUES (?, ?)", (k, "v" * 100))  # one commit each
        con.close()

    def committed() -> tuple:
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            return con.execute("SELECT count(*), min(k), max(k) FROM t").fetchone()
        finally:
            con.close()

    commit(range(0, 50), "FULL")
    assert fs.lose()["dropped_bytes"] == 0
    assert committed() == (50, 0, 49)
    commit(range(50, 80), "OFF")
    assert committed() == (80, 0, 79)
    assert fs.lose()["dropped_bytes"] > 0
    assert committed() == (50, 0, 49), "commits never fsynced survived a power loss"


def test_many_writers_and_losses_at_once(fs: FaultFS) -> None:
    """Threads write, fsync and read their own files while power is lost again and again:
    no call fails but an fsync a loss overtook (EIO, never a false success), and each file's
    content after the last loss is what its writer last synced."""
    import threading

    synced: dict[int, bytes] = {}
    errors: list[BaseException] = []
    overtaken: list[int] = []
    stop = threading.Event()

    def writer(i: int) -> None:
        path = f"{fs.mountpoint}/w{i}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            n = 0
            while not stop.is_set():
                n += 1
                os.pwrite(fd, f"{i}:{n};".encode(), 0)
                if n % 3 == 0:
                    try:
                        os.fsync(fd)
                    except OSError as e:
                        if e.errno != errno.EIO:
                            raise
                        overtaken.append(i)
                        continue
                    synced[i] = os.pread(fd, 100, 0)  # nothing else writes this file
        except OSError as e:
            errors.append(e)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    losses, end = 0, time.monotonic() + 1.0
    while time.monotonic() < end:  # losses back to back for a second of writing
        fs.lose()
        losses += 1
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors
    fs.lose()
    # After an fsync the file is what the backing holds, loss or no loss, until the next write.
    for i in range(4):
        assert read(f"{fs.mountpoint}/w{i}") == synced.get(i, b""), f"w{i} is not its last synced content"
    stats = fs.stats()
    assert stats["losses"] == losses + 1 and stats["lost_bytes"] > 0 and len(synced) == 4, stats
    assert stats["failed"]["fsync"] == len(overtaken)


def test_a_daemon_that_cannot_mount_fails_at_once_with_its_reason(tmp_path: Path) -> None:
    from harness.faultfs.control import FaultFSError

    t = time.monotonic()
    with pytest.raises(FaultFSError, match="commas"):
        FaultFS.start(tmp_path / "b", tmp_path / "m", run_id="bad,run")
    assert time.monotonic() - t < 5
    assert not any(m.mountpoint == str(tmp_path / "m") for m in faultfs_mounts())


def test_a_command_to_a_dead_daemon_says_so(tmp_path: Path) -> None:
    from harness.faultfs.control import FaultFSError

    with FaultFS.mount(tmp_path / "b", tmp_path / "m", run_id="test-dead") as fs:
        fs.proc.kill()
        fs.proc.wait()
        with pytest.raises(FaultFSError, match="exited with -9"):
            fs.lose()
    assert not any(m.mountpoint == fs.mountpoint for m in faultfs_mounts())
