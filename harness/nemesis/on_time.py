"""What keeps the nemesis's faults on time beside a busy harness and a busy machine (issue 17; measured in
bench/README.md, "Fault lateness"). The nemesis has a thread and loop of its own (own_loop.py); what still
delayed it:

- Python's full garbage collection holds the GIL, and so stops every thread, for as long as it scans every
  object the process holds: ~120,000 after the harness's imports and a bring-up, 88 to 126 ms a collection
  in a soak. `frozen_heap()` collects once before t = 0 and moves what is alive then to the permanent
  generation (`gc.freeze`): collections during the run scan only what the run made, and garbage is still
  collected. The objects are unfrozen on leaving, so a process that runs many scenarios keeps nothing.
- Each syscall a fault makes (a write to a freezer, a socket send) gives up the GIL, and taking it back
  waits up to `sys.getswitchinterval()` (5 ms by default) while another thread runs Python code: a pause
  that polls a busy cgroup's freezer state pays it at every poll. `short_switches()` makes it 0.5 ms for
  the run.
- A thread that wakes from a sleep waits for a core: a process at the default priority beside a system at
  200 intents/s woke up to 65 ms late (23 times over 20 ms in 140 s), one at real-time priority never
  over 9 ms. `realtime()` puts the calling thread (the nemesis's) in SCHED_RR where the harness may (root,
  or CAP_SYS_NICE); elsewhere it stays as it was and says so. The nemesis mostly waits, and the kernel
  keeps 5% of every second for other work (sched_rt_runtime_us), so it cannot starve the system."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator

SWITCH_INTERVAL_S = 0.0005
RT_PRIORITY = 10  # SCHED_RR's priorities are 1 to 99; the kernel's own threads sit at 50 and above


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def short_switches(interval: float = SWITCH_INTERVAL_S) -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def realtime() -> str | None:
    """The calling thread at SCHED_RR RT_PRIORITY (threads it starts inherit it); None when done, else why
    not (no permission, no such policy here)."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
    except (AttributeError, OSError) as e:  # not Linux, or no CAP_SYS_NICE
        return f"{type(e).__name__}: {e}"
    return None
