"""An applier thread lowers its own CPU priority and no one else's (worker.events.priority)."""

from __future__ import annotations

import os
import sys
import threading

from worker.events.priority import NICEST, lower_this_thread

LINUX = sys.platform == "linux"  # elsewhere a thread has no priority of its own: nothing changes


def _in_a_thread(by: int) -> tuple[int | None, int]:
    """What lower_this_thread(by) returns in a new thread, and that thread's nice value after."""
    seen: list[tuple[int | None, int]] = []

    def run() -> None:
        returned = lower_this_thread(by)
        seen.append((returned, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen[0]


def test_the_thread_is_lowered_and_the_process_is_not() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    expected = min(before + 5, NICEST)
    assert _in_a_thread(5) == ((expected, expected) if LINUX else (None, before))
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # this (main) thread kept its priority


def test_zero_changes_nothing() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    assert _in_a_thread(0) == (None, before)


def test_the_lowest_priority_is_the_limit() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    assert _in_a_thread(40) == ((NICEST, NICEST) if LINUX else (None, before))
