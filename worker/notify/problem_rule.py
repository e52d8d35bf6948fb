"""Recurring incidents: which tickets share a problem key, when a run of them is recurring. Pure.

A window is counted from the first ticket of a run: the first ticket with a key opens a run of
``window``; every ticket created before it ends joins it; the first one after it opens the
next. A run that reaches ``threshold`` tickets is told once, however many more join it (its
checkpoint key names the run's start: `notice_key`). Runs depend only on the tickets' creation
instants, so any order of arrival finds the same runs. A ticket of type ``problem`` is the
problem ticket, not an occurrence: it is never counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduler.context import TicketContext
from shared.policy_problems import ProblemKey

PROBLEM_TYPE = "problem"  # Zendesk's ticket type; other portals map theirs to it
NOTICE = "problem"  # the checkpoint kind (and metric) of a recurring incident's notice
SOLVED = "problem_solved"  # ... and of its problem ticket's resolution
_KEY_ROOM = 200  # characters of a problem key a checkpoint key keeps (its column holds 300)


@dataclass(frozen=True)
class Occurrence:
    ticket: str  # SOURCE/ID
    created_at: datetime
    customer: str | None = None


@dataclass(frozen=True)
class Run:
    start: datetime
    tickets: tuple[Occurrence, ...]


def keys_of(key: ProblemKey, context: TicketContext) -> list[str]:
    """The problem keys a ticket's context carries (several tags may each be one)."""
    if key.tag_prefix is not None:
        prefix = key.tag_prefix
        return sorted({t for t in context.tags or () if t.startswith(prefix) and t != prefix})
    value = getattr(context, key.field or "")
    return [value] if isinstance(value, str) and value else []


def runs(occurrences: Iterable[Occurrence], window: timedelta) -> list[Run]:
    """The occurrences cut into runs, each from its first ticket for ``window``."""
    found: list[Run] = []
    current: list[Occurrence] = []
    for occurrence in sorted(occurrences, key=lambda o: (o.created_at, o.ticket)):
        if current and occurrence.created_at >= current[0].created_at + window:
            found.append(Run(current[0].created_at, tuple(current)))
            current = []
        current.append(occurrence)
    if current:
        found.append(Run(current[0].created_at, tuple(current)))
    return found


def recurring(occurrences: Iterable[Occurrence], window: timedelta, threshold: int) -> list[Run]:
    """The runs with at least ``threshold`` tickets: the ones to tell."""
    return [run for run in runs(occurrences, window) if len(run.tickets) >= threshold]


def run_at(occurrences: Sequence[Occurrence], window: timedelta, start: datetime) -> Run | None:
    """The run that starts at ``start`` (what a notice lists when it is delivered)."""
    return next((r for r in runs(occurrences, window) if r.start == start), None)


def reporters(occurrences: Iterable[Occurrence]) -> list[str]:
    """The customers who reported the problem, by name, each once."""
    return sorted({o.customer for o in occurrences if o.customer})


def key_field(key: ProblemKey) -> str:
    """Where a key is read: ``tags``, or the context field."""
    return "tags" if key.tag_prefix is not None else key.field or ""


@dataclass(frozen=True)
class Told:
    """What a recurring incident's checkpoint key says, so its message can be worded from the
    key alone: kind, where the key is read, the key, and a notice's run (start, window)."""

    kind: str
    field: str
    problem: str
    start: datetime | None = None
    window: timedelta | None = None

    @property
    def key(self) -> str:
        head = f"{self.kind}:{self.field}:{_short(self.problem)}"
        if self.start is None or self.window is None:
            return head
        return f"{head}@{int(self.start.timestamp())}/{int(self.window.total_seconds())}"

    @classmethod
    def parse(cls, key: str) -> Told:
        kind, field, rest = key.split(":", 2)
        if kind != NOTICE:
            return cls(kind, field, rest)
        problem, _, run = rest.rpartition("@")
        start, _, window = run.partition("/")
        return cls(
            kind,
            field,
            problem,
            datetime.fromtimestamp(int(start), UTC),
            timedelta(seconds=int(window)),
        )


def _short(problem: str) -> str:
    """A key too long for the checkpoint's column: cut, with a digest of the whole."""
    if len(problem) <= _KEY_ROOM:
        return problem
    digest = hashlib.blake2b(problem.encode(), digest_size=8).hexdigest()
    return f"{problem[:_KEY_ROOM]}~{digest}"
