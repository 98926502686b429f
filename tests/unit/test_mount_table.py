"""faultfs's reading of the mount table (/proc/self/mountinfo, or /proc/mounts' form): fields decoded as
bytes (the kernel's octal escapes, raw non-ASCII bytes), then as a path by os.fsdecode, so a mount point
always equals the path the harness mounted at; a broken line is skipped, never a crash."""

from __future__ import annotations

import os

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from harness.faultfs.control import faultfs_mounts

SOURCE = b"faultfs:20261201-101500-abc123:vm:10041:4342222"


def mountinfo_line(mountpoint: bytes, source: bytes = SOURCE, fstype: bytes = b"fuse.faultfs") -> bytes:
    return (
        b"241 27 0:80 / " + mountpoint + b" rw,nosuid,nodev shared:1 - " + fstype + b" " + source + b" rw\n"
    )


@pytest.mark.parametrize(
    ("written", "path"),
    [
        (b"/tmp/caf\\303\\251/m", "/tmp/caf\u00e9/m"),  # é escaped byte by byte: one character, not two
        ("/tmp/café/m".encode(), "/tmp/caf\u00e9/m"),  # é as the kernel writes it: raw UTF-8
        (b"/tmp/\\346\\227\\245\\346\\234\\254/m", "/tmp/\u65e5\u672c/m"),  # three bytes each
        (b"/tmp/run\\011tab\\012nl/m", "/tmp/run\ttab\nnl/m"),
        (b"/tmp/back\\134101/m", "/tmp/back\\101/m"),  # a backslash, then the text 101: not "A"
        (b"/tmp/a\\040-\\040b/m", "/tmp/a - b/m"),  # the mountinfo separator inside a name
        (b"/tmp/\\777/m", "/tmp/\\777/m"),  # not a byte the kernel writes: left as text
    ],
)
def test_mount_table_escapes_decode_as_bytes_then_as_a_path(tmp_path, written, path):
    info = tmp_path / "mountinfo"
    info.write_bytes(b"22 1 0:21 / /proc rw - proc proc rw\n" + mountinfo_line(written))
    [m] = faultfs_mounts(str(info))
    assert m.mountpoint == path
    assert (m.run_id, m.owner) == ("20261201-101500-abc123", "vm:10041:4342222")


@pytest.mark.parametrize(
    ("written", "raw"),
    [
        (b"/tmp/\xff\xfe/m", b"/tmp/\xff\xfe/m"),
        (b"/tmp/\\377\\376/m", b"/tmp/\xff\xfe/m"),
        (b"/tmp/caf\xe9/m", b"/tmp/caf\xe9/m"),  # Latin-1
        (b"/tmp/caf\\351\\040x/m", b"/tmp/caf\xe9 x/m"),
    ],
)
def test_a_mount_point_that_is_not_utf8_is_the_path_python_holds_for_it(tmp_path, written, raw):
    """Not UTF-8 (raw or escaped): what os.fsdecode makes of those bytes, so it equals the mount point the
    harness mounted at (os.path.realpath of a str) and unmount() finds it."""
    info = tmp_path / "mountinfo"
    info.write_bytes(mountinfo_line(written) + mountinfo_line(b"/tmp/other/m"))
    mounts = faultfs_mounts(str(info))
    assert [m.mountpoint for m in mounts] == [os.fsdecode(raw), "/tmp/other/m"]
    assert os.fsencode(mounts[0].mountpoint) == raw


def kernel_escape(path: bytes) -> bytes:
    """As the kernel's mangle() writes a mount table field: these four bytes octal, the rest raw."""
    return b"".join(b"\\%03o" % b if b in b" \t\n\\" else bytes([b]) for b in path)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b))
def test_any_mount_point_comes_back_as_the_path_that_was_mounted(tmp_path_factory, name):
    raw = b"/tmp/" + name
    info = tmp_path_factory.mktemp("m") / "mountinfo"
    info.write_bytes(mountinfo_line(kernel_escape(raw)))
    assert [m.mountpoint for m in faultfs_mounts(str(info))] == [os.fsdecode(raw)]


def test_a_run_id_in_the_source_is_decoded_like_the_mount_point(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_bytes(mountinfo_line(b"/m", source=b"faultfs:r\\303\\251:host\\040x:1:2"))
    [m] = faultfs_mounts(str(info))
    assert (m.run_id, m.owner) == ("r\u00e9", "host x:1:2")


def test_broken_mount_table_lines_are_skipped_not_a_crash(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_bytes(
        b"\n"
        b"garbage\xff\xfe\x00 - \n"
        b"241 27 0:80 - fuse.faultfs\n"  # too few fields on either side
        b"241 27 0:80 / /m rw -\n"
        b" - fuse.faultfs faultfs:a:b:c:d rw\n"
        b"241 27 0:80 / /tmp/\\3 rw - fuse.faultfs faultfs:r:h:1:2 rw\n"  # a cut escape stays text
        + mountinfo_line(b"/tmp/ok/m")
        + b"241 27 0:80 / /tmp/cut/m rw - fuse.faultfs"  # the last line, cut short
    )
    assert [m.mountpoint for m in faultfs_mounts(str(info))] == ["/tmp/\\3", "/tmp/ok/m"]
    assert faultfs_mounts(str(tmp_path / "absent")) == []


def test_a_mount_table_in_proc_mounts_form_is_read_too(tmp_path):
    info = tmp_path / "mounts"
    info.write_bytes(
        b"proc /proc proc rw 0 0\n"
        + SOURCE
        + b" /tmp/caf\\303\\251\\040x/m fuse.faultfs rw,nosuid,nodev 0 0\n"
        + b"host:/ /mnt/other fuse.sshfs rw 0 0\n"
    )
    [m] = faultfs_mounts(str(info))
    assert (m.mountpoint, m.run_id) == ("/tmp/caf\u00e9 x/m", "20261201-101500-abc123")
