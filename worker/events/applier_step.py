"""The applier inside ``escalera worker``: a Celery bootstep running it on a thread of its own.

Celery's prefork pool runs the firing and delivery tasks; the worker's main process, otherwise
idle, applies events. Pool processes forked later get a runtime of their own (never a
connection the applier holds) and keep its policies fresh themselves (`worker.policies.watch`).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import structlog
from celery import bootsteps
from celery.signals import worker_process_init

from shared.config import settings
from worker.events.applier import BATCH, make_applier
from worker.events.priority import lower_this_thread
from worker.runtime import keep_policies_fresh, runtime

log = structlog.get_logger("escalera.applier")


class ApplierStep(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    requires = ("celery.worker.components:Pool",)
    batch = BATCH
    # Two appliers overlap one's Python work with the other's wait for the database.
    threads = 2

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gathering = threading.Lock()  # the appliers gather batches one at a time

    def start(self, parent: Any) -> None:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"escalera-applier-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, parent: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        nice = lower_this_thread(settings().apply_nice)  # firing first when the CPU is short
        applier = make_applier(runtime(), self.batch, self._gathering)
        log.info(
            "applier_started", consumer=applier.queue.keys.consumer, batch=self.batch, nice=nice
        )
        while not self._stop.is_set():
            try:
                applier.run(self._stop)
            except Exception:  # a bug must not silently stop applying: log it, start again
                log.exception("applier_crashed")
                self._stop.wait(1)
        log.info("applier_stopped", consumer=applier.queue.keys.consumer)


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _own_runtime(**_: Any) -> None:
    """A forked pool process must not share the parent's database connections.

    It loads the policies itself and watches the folder for changes. SIGHUP is ignored here:
    billiard replaces any handler a pool process installs with one that ends it mid-task
    (`billiard.common.reset_signals`), and only an ignored signal is left alone.
    """
    runtime().engine.dispose(close=False)
    runtime.cache_clear()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    keep_policies_fresh(runtime(), hangup=False)
