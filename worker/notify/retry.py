"""What a failed try of a notification leads to: its failed targets again after a backoff, or
giving up on its channel and telling the route's fallback channel instead. Pure: no I/O.

Retries are decided here only: the deliverer stores a try's decision as the row's state
(`Retry.state`, `Dead.state`), the task applies it (queues the notification again after
`Retry.countdown_s`, delivers the fallback's), and a fire task that finds a notification of an
already fired checkpoint still `UNFINISHED` (the task before it died first) delivers it now.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from shared.db.models import NotificationState
from shared.policy_routes import RouteSpec

MAX_BACKOFF_S = 300
# A notification another batch holds (it swept it in) is looked at again this much later: by
# then that batch has sent it (or, if it died, let it go).
BUSY_RECHECK_S = 2
# The states a notification is tried again from; from the others (sent, dead), never.
UNFINISHED = (NotificationState.PENDING, NotificationState.RETRYING)


class Failure(StrEnum):
    """Why a try did not deliver a notification."""

    TARGETS = "targets"  # some of the channel's targets refused it or did not answer
    NOT_CONFIGURED = "not_configured"  # the channel has no URLs (``ESCALERA_CHANNEL_<NAME>``)


@dataclass(frozen=True)
class Retry:
    """Try the targets that failed again, ``in_s`` seconds from now."""

    in_s: float
    state: ClassVar[NotificationState] = NotificationState.RETRYING

    @property
    def countdown_s(self) -> int:
        """The queue's countdown: whole seconds, never shorter than the backoff."""
        return math.ceil(self.in_s)


@dataclass(frozen=True)
class Dead:
    """Give up on this channel; tell ``fallback`` instead, once (None: no other channel)."""

    fallback: str | None = None
    state: ClassVar[NotificationState] = NotificationState.DEAD


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Exponential with jitter: ~2, 4, 8 … seconds, at most five minutes (7.5 with jitter)."""
    return float(min(MAX_BACKOFF_S, 2**attempt) * rng.uniform(0.5, 1.5))


def retries_span_s(attempt: int, attempts: int) -> float:
    """The longest the tries after the ``attempt``-th can take before the last of ``attempts``
    (each backoff at its longest)."""
    return float(sum(min(MAX_BACKOFF_S, 2**a) * 1.5 for a in range(attempt, attempts)))


def retry_decision(
    attempt: int,
    failure: Failure,
    route: RouteSpec | None,
    *,
    channel: str,
    rng: random.Random,
    parked_s: float = 0.0,
) -> Retry | Dead:
    """After the ``attempt``-th try (from 1) of a notification to ``channel`` by ``route``
    failed: again while the route allows more attempts; dead once out of them, at once if the
    channel is not configured (no retry can mend that), or if the route is gone from its
    policy (None). Dead at once too when a target it failed on is parked (not answering:
    `worker.notify.breaker`) for ``parked_s``, longer than all its remaining tries would take:
    they would all find it parked, and the fallback is told now instead of after them."""
    if route is None:
        return Dead()
    if (
        failure is Failure.TARGETS
        and attempt < route.attempts
        and parked_s <= retries_span_s(attempt, route.attempts)
    ):
        return Retry(backoff_s(attempt, rng))
    fallback = route.fallback if route.fallback and route.fallback != channel else None
    return Dead(fallback)
