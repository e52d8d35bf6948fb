"""The policies a deployment runs: one file per source, validated as a whole before use.

A `PolicyBook` holds one `Edition`: the policies in force, the files they came from, their hash,
when they were loaded and whether from the folder or from the last good copy kept in the
database (`worker.policies.store`). `PolicyBook.reload` reads and validates the whole folder first
and swaps the edition with one reference assignment, so a reader on any thread (the appliers,
the ingest's thread pool) sees the old policies or the new ones, never a mix. A folder that does
not validate leaves the edition in force untouched: the caller logs and counts the refusal.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from scheduler.calendars import CalendarBook
from shared.config import Settings
from shared.errors import PolicyError, Problem
from shared.policy import Policy
from shared.policy_file import parse_policy

SHORT_HASH = 12  # hex digits of the sha256 shown in /readyz, logs and metrics
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoadedPolicy:
    name: str  # the file's stem, e.g. "athento"
    policy: Policy
    calendars: CalendarBook


class Origin(StrEnum):
    FOLDER = "folder"  # the policy folder as it is now
    LAST_GOOD = "last_good"  # the folder does not validate: the last copy that did


@dataclass(frozen=True)
class Edition:
    """One complete set of policies, as loaded together."""

    policies: Mapping[str, LoadedPolicy]
    files: Mapping[str, str]  # file name -> text, exactly what was validated
    hash: str  # `folder_hash` of ``files``
    loaded_at: datetime
    origin: Origin = Origin.FOLDER

    @property
    def stale(self) -> bool:
        return self.origin is Origin.LAST_GOOD


class Outcome(StrEnum):
    RELOADED = "reloaded"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass(frozen=True)
class Reload:
    """What one `PolicyBook.reload` did; ``error`` says why a folder was refused."""

    outcome: Outcome
    edition: Edition  # in force after the reload
    previous: Edition
    error: PolicyError | None = None


class PolicyBook:
    """Which policy applies to events from which source; reloadable as a whole."""

    def __init__(
        self,
        edition: Edition,
        by_source: Mapping[str, str],
        default: str,
        *,
        folder: Path | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._by_source, self._default = dict(by_source), default
        self._folder, self._clock = folder, clock
        _check_routes(edition, self._by_source, default)
        self._edition = edition
        self._reloading = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = utc_now) -> PolicyBook:
        """Load and validate every policy file in the folder; a bad one raises `PolicyError`."""
        edition = load_edition(read_folder(settings.policy_dir), str(settings.policy_dir), clock())
        return cls._of(edition, settings, clock)

    @classmethod
    def last_good(
        cls, files: Mapping[str, str], settings: Settings, clock: Clock = utc_now
    ) -> PolicyBook:
        """A book on a saved copy of a folder (which still reloads from the real folder)."""
        edition = load_edition(files, "last good copy", clock(), Origin.LAST_GOOD)
        return cls._of(edition, settings, clock)

    @classmethod
    def _of(cls, edition: Edition, settings: Settings, clock: Clock) -> PolicyBook:
        return cls(
            edition,
            settings.source_policies,
            settings.default_policy,
            folder=settings.policy_dir,
            clock=clock,
        )

    @property
    def edition(self) -> Edition:
        return self._edition

    def for_source(self, source: str) -> LoadedPolicy:
        edition = self._edition  # read once: a reload may swap it meanwhile
        return edition.policies[self._by_source.get(source, self._default)]

    def named(self, name: str) -> LoadedPolicy:
        return self._edition.policies[name]

    def reload(self) -> Reload:
        """Validate the whole folder, then swap it in; on any problem keep what is in force."""
        if self._folder is None:
            raise ValueError("this book was not loaded from a folder")
        with self._reloading:
            previous = self._edition
            try:
                files = read_folder(self._folder)
                if folder_hash(files) == previous.hash and not previous.stale:
                    return Reload(Outcome.UNCHANGED, previous, previous)
                edition = load_edition(files, str(self._folder), self._clock())
                _check_routes(edition, self._by_source, self._default)
                _check_nothing_dropped(previous, edition, self._folder)
            except PolicyError as error:
                return Reload(Outcome.REFUSED, previous, previous, error)
            self._edition = edition  # the swap: one reference assignment
            return Reload(Outcome.RELOADED, edition, previous)


def folder_hash(files: Mapping[str, str]) -> str:
    """A short sha256 of the files' names and bytes: equal folders, equal hashes."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].encode("utf-8")
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:SHORT_HASH]


def policy_files(folder: Path) -> list[Path]:
    """The folder's policy files, in the order they load (a later stem replaces an earlier)."""
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))


def read_folder(folder: Path) -> dict[str, str]:
    """Every policy file's text, read once; `PolicyError` if one cannot be read or decoded."""
    texts = {}
    for path in policy_files(folder):
        try:
            texts[path.name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problem = Problem(None, "", f"cannot read the file: {reason}")
            raise PolicyError(str(path), [problem]) from exc
    if not texts:
        raise PolicyError(
            str(folder), [Problem(None, "", "no policy files (*.yaml) in this folder")]
        )
    return texts


def load_edition(
    files: Mapping[str, str], where: str, loaded_at: datetime, origin: Origin = Origin.FOLDER
) -> Edition:
    """Validate every file; the first that does not validate raises `PolicyError`."""
    policies = {}
    for name in sorted(files, key=lambda n: (n.endswith(".yml"), n)):  # as `policy_files`
        text, stem = files[name], Path(name).stem
        policy = parse_policy(text, str(Path(where) / name))
        policies[stem] = LoadedPolicy(stem, policy, CalendarBook(policy))
    return Edition(policies, dict(files), folder_hash(files), loaded_at, origin)


def load_folder(folder: Path) -> dict[str, LoadedPolicy]:
    return dict(load_edition(read_folder(folder), str(folder), utc_now()).policies)


def _check_routes(edition: Edition, by_source: Mapping[str, str], default: str) -> None:
    missing = sorted({*by_source.values(), default} - set(edition.policies))
    if missing:
        known = ", ".join(sorted(edition.policies)) or "none"
        raise PolicyError(
            "policy settings",
            [
                Problem(None, "", f"no policy file named {name!r} (found: {known})")
                for name in missing
            ],
        )


def _check_nothing_dropped(previous: Edition, edition: Edition, folder: Path) -> None:
    """Tickets name their policy: a running process cannot let one go (a restart can)."""
    dropped = sorted(set(previous.policies) - set(edition.policies))
    if dropped:
        raise PolicyError(
            str(folder),
            [
                Problem(
                    None,
                    "",
                    f"policy {name!r} is gone, but tickets may still be under it: a reload "
                    "keeps every policy in force (restart to remove one)",
                )
                for name in dropped
            ],
        )
