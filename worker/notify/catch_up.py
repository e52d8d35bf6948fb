"""Late arrivals do not page the past: which fired checkpoints page nobody, and why. Pure.

When a ticket's events arrive after several of a clock's checkpoints are already due (an
import, a portal retrying after an outage, ``escalera sync``, a worker that was down), paging
each of them tells the on-call engineer three stale things at once. The policy's ``catch_up``
and ``max_catch_up`` (`shared.policy_catch_up`) say what pages instead:

- A clock is one ticket's one metric cycle: ``first_response``, ``update#2``, ``resolution``,
  read off the checkpoint's key (``first_response:warning:75``, ``update#2:reminder:1``: the
  keys `scheduler.evaluate` makes).
- ``catch_up: latest``: a warning is caught up by any later checkpoint of its clock due at
  firing time (a later warning, the breach, a reminder); a reminder by a later reminder. The
  most advanced one pages, and it says where the clock stands.
- A breach is never caught up: it is the page routes send to phones, and a reminder after it
  is routed apart in every preset (``desk`` takes reminders, ``critico-phone`` does not).
- Escalations stand alone: tier 2 and tier 3 due together both page, since each tier is its
  own team's call to act and neither message says the other.
- ``max_catch_up``: a checkpoint due longer ago than that (wall clock, at firing time) pages
  nobody, whatever its kind. That is said first: so a checkpoint said caught up always names
  one that paged (the latest of its clock, not too old itself).
- "Due at firing time" is read from the database, not from the fire batch, so the answer does
  not depend on how beat split its claims; and only a checkpoint that has fired (in this batch
  or before) catches a warning up. One still armed may yet be met by an event waiting in the
  queue (a reply that arrived late, under a backlog): had it caught the warning up, neither
  would page. A checkpoint not paged is still fired, and still counts
  in every report (a breach is a breach).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.db.models import NotPaged
from shared.policy import Policy
from shared.policy_catch_up import CatchUp

_STEPS = ("warning", "breach", "reminder")  # the kinds that belong to a clock
_ALLOWANCE = "allowance"  # an allowance warning's key prefix: a customer's count, not a clock


@dataclass(frozen=True)
class Due:
    """A checkpoint as the decision reads it (any state: armed, or fired before)."""

    ticket_pk: int
    key: str
    kind: str
    due_at: datetime


@dataclass(frozen=True)
class Silence:
    """Why a fired checkpoint paged nobody."""

    reason: NotPaged
    by: str | None = None  # caught up: the key of its clock's checkpoint that pages instead

    def __str__(self) -> str:
        if self.reason is NotPaged.CAUGHT_UP:
            return f"caught up by {self.by}"
        return "older than max_catch_up"


@dataclass(frozen=True)
class CatchUpRule:
    """A policy's two settings, ready to apply."""

    catch_up: CatchUp = CatchUp.LATEST
    max_age: timedelta | None = None

    @classmethod
    def of(cls, policy: Policy) -> CatchUpRule:
        limit = policy.max_catch_up
        seconds = limit.fixed_seconds() if limit is not None else None
        return cls(policy.catch_up, timedelta(seconds=seconds) if seconds is not None else None)

    def may_catch_up(self, checkpoint: Due) -> bool:
        """Whether later checkpoints of its clock can silence this one (else they need not be
        read: a breach, an escalation, or ``catch_up: all``)."""
        return self.catch_up is CatchUp.LATEST and _step(checkpoint) in ("warning", "reminder")


def clock_of(key: str, kind: str) -> str | None:
    """The clock a checkpoint belongs to (``update#2``), or None if it stands alone (an
    escalation, an allowance warning)."""
    clock, _, rest = key.partition(":")
    if kind not in _STEPS or clock == _ALLOWANCE or rest.split(":", 1)[0] != kind:
        return None
    return clock


def silence(
    checkpoint: Due, rule: CatchUpRule, others: Iterable[Due], now: datetime
) -> Silence | None:
    """Why ``checkpoint``, fired at ``now``, pages nobody; None when it pages.

    ``others``: checkpoints of its ticket (those not due by ``now`` are ignored).
    """
    if rule.max_age is not None and now - checkpoint.due_at > rule.max_age:
        return Silence(NotPaged.TOO_OLD)
    if rule.may_catch_up(checkpoint):
        by = caught_up_by(checkpoint, others, now)
        if by is not None:
            return Silence(NotPaged.CAUGHT_UP, by)
    return None


def caught_up_by(checkpoint: Due, others: Iterable[Due], now: datetime) -> str | None:
    """The key of the most advanced checkpoint of its clock, due by ``now``, that takes its
    place (``catch_up: latest``); None if nothing does."""
    later = [
        other
        for other in others
        if other.ticket_pk == checkpoint.ticket_pk
        and checkpoint.due_at < other.due_at <= now
        and _takes_the_place(other, checkpoint)
    ]
    return max(later, key=lambda other: (other.due_at, other.key)).key if later else None


def _takes_the_place(later: Due, earlier: Due) -> bool:
    step = _step(earlier)
    same_clock = clock_of(later.key, later.kind) == clock_of(earlier.key, earlier.kind)
    return same_clock and (step == "warning" or (step == "reminder" == _step(later)))


def _step(checkpoint: Due) -> str | None:
    """Its kind, if it belongs to a clock."""
    return checkpoint.kind if clock_of(checkpoint.key, checkpoint.kind) is not None else None
