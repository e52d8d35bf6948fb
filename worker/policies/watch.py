"""Keeping a process's policies fresh: reloaded on SIGHUP and when the folder's files change.

A `FolderWatch` compares the folder's files (names, sizes, modification times) with what it saw
last; `check` reloads the book when they differ or when SIGHUP asked for it, then says what
happened (a log line, the metrics) and saves a newly loaded folder as the last good copy. A
daemon thread calls `check` every few seconds; the SIGHUP handler only wakes that thread, so no
file is read and no database is written inside a signal handler. Tests call `check` directly.

Each process watches for itself: every uvicorn worker, the Celery worker and each of its pool
processes (which ignore SIGHUP: billiard would turn it into an exit), beat.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, ModuleType

import structlog
from sqlalchemy.orm import Session, sessionmaker

from worker.policies.book import Edition, Outcome, PolicyBook, Reload, policy_files
from worker.policies.store import log_refused, save

log = structlog.get_logger("escalera.policies")

POLL_INTERVAL_S = 5.0  # how long a changed file may wait before it is seen (0: not looked at)
Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folder: Path) -> Fingerprint:
    """Each policy file's name, size and modification time (ns); a vanished file reads -1."""
    seen = []
    for path in policy_files(folder):
        try:
            stat = path.stat()
        except OSError:
            seen.append((path.name, -1, -1))
        else:
            seen.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(seen)


class FolderWatch:
    """Reloads one book when its folder changes or when asked (SIGHUP)."""

    def __init__(
        self,
        book: PolicyBook,
        folder: Path,
        sessions: sessionmaker[Session] | None = None,
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.book, self.folder, self.interval_s = book, folder, interval_s
        self._sessions = sessions
        self._seen = fingerprint(folder)
        self._asked = threading.Event()
        self._saved: str | None = None  # hash of the last copy the database took

    def start(self) -> threading.Thread:
        """Announce the policies in force, keep them if good, and watch on a daemon thread."""
        self.announce()
        self._save_if_new(self.book.edition)
        thread = threading.Thread(target=self._run, name="escalera-policy-watch", daemon=True)
        thread.start()
        return thread

    def announce(self) -> None:
        edition = self.book.edition
        _metrics().policies_in_force(edition.hash, edition.origin.value)
        log.info(
            "policies_in_force",
            hash=edition.hash,
            origin=edition.origin.value,
            folder=str(self.folder),
            policies=sorted(edition.policies),
        )

    def ask(self) -> None:
        """Reload at the next check whatever the files look like (safe in a signal handler)."""
        self._asked.set()

    def check(self) -> Reload | None:
        """One look at the folder: the reload it caused, or None if there was nothing to do."""
        asked, seen = self._asked.is_set(), fingerprint(self.folder)
        self._asked.clear()
        if not asked and seen == self._seen:
            self._save_if_new(self.book.edition)  # the database may be back
            return None
        self._seen = seen
        result = self.book.reload()
        self._report(result, asked=asked)
        if result.outcome is Outcome.RELOADED:
            self._save_if_new(result.edition)
        return result

    def _run(self) -> None:
        while True:
            self._asked.wait(self.interval_s or None)  # 0: only when asked
            try:
                self.check()
            except Exception:  # a bug here must not stop the watch: log it, look again later
                log.exception("policy_watch_failed", folder=str(self.folder))

    def _report(self, result: Reload, *, asked: bool) -> None:
        trigger = "sighup" if asked else "change"
        if result.outcome is Outcome.UNCHANGED:
            log.info("policies_unchanged", hash=result.edition.hash, trigger=trigger)
            return
        _metrics().policy_load(result.outcome.value)
        if result.error is not None:
            log_refused("policy_reload_failed", result.error, result.edition, trigger=trigger)
            return
        before, after = result.previous, result.edition
        _metrics().policies_in_force(
            after.hash, after.origin.value, (before.hash, before.origin.value)
        )
        log.info(
            "policies_reloaded",
            hash=after.hash,
            previous_hash=before.hash,
            previous_origin=before.origin.value,
            trigger=trigger,
        )

    def _save_if_new(self, edition: Edition) -> None:
        if self._sessions is None or edition.stale or edition.hash == self._saved:
            return
        if save(self._sessions, edition):
            self._saved = edition.hash


def on_hangup(watch: FolderWatch) -> bool:
    """SIGHUP asks ``watch`` to reload; False (logged) outside the main thread, where Python
    cannot take signals."""

    def hangup(_signum: int, _frame: FrameType | None) -> None:
        watch.ask()

    try:
        signal.signal(signal.SIGHUP, hangup)
    except ValueError:  # not the main thread: the folder watch alone keeps this process fresh
        log.warning("policy_sighup_not_installed", reason="not the main thread")
        return False
    return True


def _metrics() -> ModuleType:
    """`shared.metrics`, imported late: prometheus_client must not be imported before
    ``escalera worker``/``ingest`` choose where its samples go (`worker.commands.serve`)."""
    from shared import metrics  # noqa: PLC0415 - see the docstring

    return metrics
