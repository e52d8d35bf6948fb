"""The appliers' CPU priority: below the firing that must be on time.

The worker's main process applies events on threads of its own; its prefork pool fires and
delivers. On a machine whose CPU is saturated the scheduler shares it out evenly, so a page
that fell due waited behind whatever batch of events an applier was working through. An
applier thread lowers its own priority (Linux keeps a nice value per thread), so the pool and
beat take the CPU first and applying waits: its events stay on the queue, nothing is lost, and
ingest's backpressure (``ESCALERA_INGEST_MAX_QUEUE``) still bounds the queue. Idle CPU is used
in full whatever the priority.
"""

from __future__ import annotations

import os
import sys
import threading

NICEST = 19  # the lowest priority Linux gives


def lower_this_thread(by: int) -> int | None:
    """Add ``by`` to the calling thread's nice value (up to 19); its new value, or None where
    a thread has no priority of its own (not Linux) or nothing is asked."""
    if by <= 0 or sys.platform != "linux":
        return None  # elsewhere PRIO_PROCESS names a whole process, never a thread
    tid = threading.get_native_id()
    niceness = min(os.getpriority(os.PRIO_PROCESS, tid) + by, NICEST)
    os.setpriority(os.PRIO_PROCESS, tid, niceness)
    return niceness
