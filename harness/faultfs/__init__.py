"""faultfs: a FUSE file system over a backing directory that keeps written data unsynced
until fsync, so a power loss (`lose`) can drop it; it also fails writes, fsyncs and reads
with EIO, fills up (ENOSPC) and slows fsync on command. docs/faultfs.md has the semantics.

The harness uses `harness.faultfs.control` (FaultFS.mount, unmount_leftovers); this package
imports nothing, so the pure model loads where libfuse3 is absent."""

FSTYPE = "faultfs"  # the mount's subtype: /proc/self/mountinfo shows "fuse.faultfs"
