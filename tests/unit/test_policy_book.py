"""The policy book: reloaded whole or not at all, on SIGHUP or a changed file, never by a sleep."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shared.config import Settings
from shared.errors import PolicyError
from tests.support import preset_text_without_notifications
from worker.policies import store as policy_store
from worker.policies import watch as policy_watch
from worker.policies.book import Origin, Outcome, PolicyBook, folder_hash
from worker.policies.watch import FolderWatch, on_hangup

GOOD = preset_text_without_notifications("soporte-completo")
# the same policy, with one more alias for P1: a change a reader can see
CHANGED = GOOD.replace("[Crítico, critical, urgent]", "[Crítico, critical, urgent, sev1]")
# line 23 names P1's aliases; a number is not a list
BROKEN = GOOD.replace("{aliases: [Crítico, critical, urgent]", "{aliases: 7")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "soporte-completo.yaml").write_text(GOOD, encoding="utf-8")
    return tmp_path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(folder: Path, clock: Clock) -> PolicyBook:
    return PolicyBook.from_settings(
        Settings(policy_dir=folder, default_policy="soporte-completo"), clock
    )


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    """The log lines of the reload, as data (fresh loggers: cached ones bypass the capture)."""
    for module in (policy_watch, policy_store):
        monkeypatch.setattr(module, "log", structlog.get_logger("escalera.policies"))
    with capture_logs() as captured:
        yield captured


def write(folder: Path, text: str, *, keep_stat: bool = False) -> None:
    """Replace the policy file; ``keep_stat`` keeps its size and time, hiding it from the poll."""
    path = folder / "soporte-completo.yaml"
    before = path.stat()
    path.write_text(text, encoding="utf-8")
    if keep_stat:
        assert path.stat().st_size == before.st_size
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def p1_aliases(book: PolicyBook) -> set[str]:
    policy = book.for_source("zendesk").policy
    return {a for a in ("sev1", "sev1xx", "urgent") if policy.priority_named(a) == "P1"}


def refused_count() -> float:
    return REGISTRY.get_sample_value("escalera_policy_loads_total", {"outcome": "refused"}) or 0.0


def test_an_invalid_file_on_reload_keeps_the_policies_in_force(
    book: PolicyBook, folder: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    """The old policies stay; the refusal is logged with file, line and field, and counted."""
    before, refused, watch = book.edition, refused_count(), FolderWatch(book, folder)
    write(folder, BROKEN)
    result = watch.check()
    assert result is not None and result.outcome is Outcome.REFUSED
    assert book.edition is before and p1_aliases(book) == {"urgent"}
    [line] = [line for line in logs if line["event"] == "policy_reload_failed"]
    assert line["file"] == str(folder / "soporte-completo.yaml")
    assert (line["line"], line["field"]) == (23, "priorities.P1.aliases")
    assert (line["hash"], line["log_level"]) == (before.hash, "error")
    assert refused_count() == refused + 1


def test_a_valid_change_is_picked_up_when_the_watch_checks(
    book: PolicyBook, folder: Path, clock: Clock, logs: list[MutableMapping[str, Any]]
) -> None:
    """The poll sees the modified file; readers get the new policies, its hash and load time."""
    watch = FolderWatch(book, folder)
    assert watch.check() is None  # nothing changed: nothing reloaded
    clock.now += timedelta(minutes=5)
    write(folder, CHANGED)
    result = watch.check()
    assert result is not None and result.outcome is Outcome.RELOADED
    assert p1_aliases(book) == {"sev1", "urgent"}
    assert book.edition.hash == folder_hash({"soporte-completo.yaml": CHANGED})
    assert book.edition.loaded_at == clock.now
    assert [line["event"] for line in logs] == ["policies_reloaded"]
    assert watch.check() is None  # seen once, not reloaded again


def test_sighup_reloads_what_the_poll_cannot_see(
    book: PolicyBook, folder: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    """A change of the same size and time is invisible to the poll; SIGHUP reloads it."""
    watch = FolderWatch(book, folder)
    write(folder, GOOD.replace("urgent]", "sev1xx]"), keep_stat=True)
    assert watch.check() is None and p1_aliases(book) == {"urgent"}
    before = signal.getsignal(signal.SIGHUP)
    try:
        assert on_hangup(watch)
        os.kill(os.getpid(), signal.SIGHUP)  # the handler runs before the next line
        result = watch.check()
    finally:
        signal.signal(signal.SIGHUP, before)
    assert result is not None and result.outcome is Outcome.RELOADED
    assert p1_aliases(book) == {"sev1xx"}
    assert (logs[-1]["event"], logs[-1]["trigger"]) == ("policies_reloaded", "sighup")


def test_a_reload_cannot_drop_a_policy_tickets_may_still_name(
    folder: Path, clock: Clock, logs: list[MutableMapping[str, Any]]
) -> None:
    """A removed file is refused on reload (a restart may drop it); the policy stays usable."""
    (folder / "athento.yaml").write_text(GOOD)
    book = PolicyBook.from_settings(Settings(policy_dir=folder), clock)
    watch = FolderWatch(book, folder)
    (folder / "athento.yaml").unlink()
    result = watch.check()
    assert result is not None and result.outcome is Outcome.REFUSED
    assert book.named("athento").name == "athento"
    assert "athento" in logs[-1]["message"]


def test_a_reload_missing_the_default_policy_is_refused(book: PolicyBook, folder: Path) -> None:
    """The folder must still hold every policy the settings route to."""
    (folder / "other.yaml").write_text(GOOD)
    (folder / "soporte-completo.yaml").unlink()
    result = book.reload()
    assert result.outcome is Outcome.REFUSED and result.error is not None
    assert "soporte-completo" in str(result.error)
    assert book.for_source("api").name == "soporte-completo"


def test_reloading_an_unchanged_folder_changes_nothing(book: PolicyBook) -> None:
    """Same bytes, same hash: the edition in force (and its load time) is kept."""
    before = book.edition
    result = book.reload()
    assert result.outcome is Outcome.UNCHANGED and book.edition is before


def test_the_hash_names_the_files_and_their_bytes() -> None:
    """Short, stable, and different when a name or a byte differs."""
    one = folder_hash({"a.yaml": GOOD})
    assert len(one) == 12 and one == folder_hash({"a.yaml": GOOD})
    assert one != folder_hash({"b.yaml": GOOD}) != folder_hash({"a.yaml": GOOD + " "})


def test_a_book_on_the_last_good_copy_says_so_and_reloads_from_the_folder(
    folder: Path, clock: Clock
) -> None:
    """Started on a saved copy, the book is stale until the folder validates again."""
    config = Settings(policy_dir=folder)
    write(folder, BROKEN)
    book = PolicyBook.last_good({"soporte-completo.yaml": GOOD}, config, clock)
    assert book.edition.stale
    assert book.reload().outcome is Outcome.REFUSED
    write(folder, GOOD)
    result = book.reload()
    assert result.previous.origin is Origin.LAST_GOOD
    assert result.outcome is Outcome.RELOADED and book.edition.origin is Origin.FOLDER
    assert book.edition.hash == result.previous.hash  # same files, now from the folder


def test_a_folder_that_does_not_validate_is_refused_at_first_load(folder: Path) -> None:
    """No book at all without a valid folder: `PolicyError` with the file and line."""
    write(folder, BROKEN)
    with pytest.raises(PolicyError, match=r"soporte-completo.yaml:23: priorities.P1.aliases"):
        PolicyBook.from_settings(Settings(policy_dir=folder))
