"""harness.nemesis.on_time: the heap alive before t = 0 is out of the run's full collections, and garbage
made during the run is still collected."""

from __future__ import annotations

import gc
import weakref

from harness.nemesis import on_time


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_frozen_keeps_earlier_objects_out_of_collections_and_still_collects_new_garbage() -> None:
    before = [Node() for _ in range(1000)]
    with on_time.frozen_heap():
        assert gc.get_freeze_count() >= len(before)  # the earlier objects are not scanned any more
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made during the run, then dropped
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    assert gc.get_freeze_count() == 0  # given back on leaving, for the next scenario of the process
    assert len(before) == 1000


def test_frozen_unfreezes_when_the_run_fails() -> None:
    try:
        with on_time.frozen_heap():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


def test_short_switches_gives_the_interval_back() -> None:
    import sys

    before = sys.getswitchinterval()
    with on_time.short_switches(0.0005):
        assert sys.getswitchinterval() == 0.0005
    assert sys.getswitchinterval() == before


def test_realtime_puts_the_thread_in_sched_rr_or_says_why_not() -> None:
    import os
    import threading

    seen: list[tuple[str | None, int]] = []

    def thread() -> None:
        why = on_time.realtime()
        seen.append((why, os.sched_getscheduler(0)))

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    why, policy = seen[0]
    if os.geteuid() == 0:  # root may (the project's machine and CI)
        assert why is None and policy == os.SCHED_RR
    else:
        assert why is not None and policy == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread only, not the process
