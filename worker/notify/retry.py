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
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from shared.db.models import NotificationState
from shared.policy_routes import RouteSpec
from worker.notify.breaker import Target

MAX_BACKOFF_S = 300
# A try due this close to a park's end is made: only one surely inside the park is counted
# without being made (`next_try`). The park is measured when the task starts, the retry's
# countdown only after the batch's sends (each up to Apprise's time-out, 4 s by default) and
# its commit; a queued retry runs late, never early.
PARK_MARGIN_S = 5.0
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
    """Try the targets that failed again, ``in_s`` seconds from now; ``skipped``: the tries
    before that one, which could only find a target parked, counted as failed now;
    ``parked_on``: every target it failed on parked, this one the first to reopen: the try
    waits in that target's waiting set (`worker.notify.breaker_waiting`), drained by one task
    when the park ends, not in a task of its own; ``parked_s``: how long it stays parked;
    ``attempts``: the notification's attempts as this decision leaves them (a parked page's
    rescue tells by them that nobody tried it since: `worker.tasks.rescue_parked_task`)."""

    in_s: float
    skipped: int = 0
    parked_on: Target | None = field(default=None, compare=False)
    parked_s: float = field(default=0.0, compare=False)
    attempts: int = field(default=0, compare=False)
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
    policy (None).

    Every target it failed on parked (not answering: `worker.notify.breaker`) for
    ``parked_s``: its tries that fall inside the park could only find them parked, and are
    counted now instead of each being queued (`next_try`); dead at once if every try left
    would.
    """
    if route is None:
        return Dead()
    if failure is Failure.TARGETS and (retry := next_try(attempt, route.attempts, parked_s, rng)):
        return retry
    fallback = route.fallback if route.fallback and route.fallback != channel else None
    return Dead(fallback)


def next_try(attempt: int, attempts: int, parked_s: float, rng: random.Random) -> Retry | None:
    """The next try worth making after the ``attempt``-th of ``attempts`` failed on a target
    parked for ``parked_s`` (0: none): at its usual backoff, or, the target still parked
    then, the first of the following tries that falls after the park, at the time it would be
    made, the tries before it counted failed (`Retry.skipped`); None when none is left: out of
    attempts, or each try left would find the target parked (the fallback is told now, not
    after them). Exactly the tries and the fate a retry at a time would come to, each finding
    the target parked and deciding again, without the queue's tasks that only found that.
    """
    park = parked_s - PARK_MARGIN_S  # leaning towards a try: the worst is one task too many
    waited, skipped = 0, 0  # whole seconds: the queue rounds each countdown up
    while (tried := attempt + skipped) < attempts and park - waited <= retries_span_s(
        tried, attempts
    ):
        backoff = backoff_s(tried, rng)
        if waited + math.ceil(backoff) >= park:  # the park is over by then: a real try
            return Retry(waited + backoff, skipped)
        waited += math.ceil(backoff)
        skipped += 1
    return None
