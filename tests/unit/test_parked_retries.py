"""A page whose target is parked (`worker.notify.breaker`): the tries that would fall inside
the park are counted at once, not each queued as a task that could only find it parked; the
next try is the first that falls after the park, when it would have been made (pure)."""

from __future__ import annotations

import random

from shared.policy_routes import RouteSpec
from tests.unit.test_notify_retry import Extreme
from worker.notify.retry import (
    PARK_MARGIN_S,
    Dead,
    Failure,
    Retry,
    backoff_s,
    next_try,
    retry_decision,
)


def page(attempts: int = 5) -> RouteSpec:
    return RouteSpec.model_validate(
        {"name": "page", "channels": ["oncall_phone"], "attempts": attempts, "fallback": "desk"}
    )


def decide(attempt: int, parked_s: float, rng: random.Random, attempts: int = 5) -> Retry | Dead:
    return retry_decision(
        attempt, Failure.TARGETS, page(attempts), channel="oncall_phone", rng=rng, parked_s=parked_s
    )


def test_nothing_parked_the_next_try_is_at_its_usual_backoff_nothing_skipped() -> None:
    for seed in range(50):
        for attempt in (1, 2, 4):
            usual = backoff_s(attempt, random.Random(seed))
            assert decide(attempt, 0.0, random.Random(seed)) == Retry(usual)


def test_the_tries_inside_the_park_are_counted_and_the_first_after_it_is_queued() -> None:
    """Parked 30 s, backoffs of 3, 6, 12, 24 s: the tries at 3, 9 and 21 s would find it
    parked (counted now), the one at 45 s is the next made."""
    assert decide(1, 30.0, Extreme(high=True)) == Retry(45.0, skipped=3)
    # parked 10 s: the try at 3 s is counted, the one at 9 s is made
    assert decide(1, 10.0, Extreme(high=True)) == Retry(9.0, skipped=1)
    # parked 7 s: the try at 3 s falls within the margin of the park's end (PARK_MARGIN_S: the
    # park was measured at the task's start, before its sends) and is made
    assert decide(1, 7.0, Extreme(high=True)) == Retry(3.0)
    assert decide(1, 2.0, Extreme(high=True)) == Retry(3.0)


def test_every_try_left_inside_the_park_the_fallback_is_told_now() -> None:
    """Backoffs of 1, 2, 4, 8 s: all four tries left within 30 s of park: dead at once."""
    assert decide(1, 30.0, Extreme(high=False)) == Dead("desk")
    assert decide(1, 30.0, Extreme(high=True)) != Dead("desk")
    assert decide(4, 30.0, Extreme(high=True)) == Dead("desk")  # its last try: at 24 s
    assert decide(5, 0.0, Extreme(high=True)) == Dead("desk")  # out of attempts


def test_the_next_try_never_waits_more_than_one_backoff_past_the_park() -> None:
    """However long the park (at most 5 minutes) and the route's attempts, the retry's
    countdown stays far under the broker's visibility timeout (1 h)."""
    for seed in range(200):
        rng = random.Random(seed)
        parked = rng.uniform(0, 300)
        retry = next_try(1, 20, parked, rng)
        assert retry is not None
        assert parked - PARK_MARGIN_S <= retry.countdown_s <= parked + 450


class Factors(random.Random):
    """An rng whose ``uniform(0.5, 1.5)`` returns preset jitter factors, in order."""

    def __init__(self, *factors: float) -> None:
        super().__init__(0)
        self.factors = list(factors)

    def uniform(self, a: float, b: float) -> float:
        return self.factors.pop(0)


def test_a_try_one_retry_at_a_time_would_make_after_the_park_is_not_given_up() -> None:
    """The queue rounds each countdown up to a whole second: with backoffs of 2.1, 4.1 and
    8.1 s, retries one at a time run at 3, 8 and 17 s. Parked 16 s, the try at 17 s is a real
    one: the page is not dead now, and it is retried then."""
    retry = next_try(1, 4, 16.0, Factors(1.05, 1.025, 1.0125))
    assert retry is not None and retry.skipped == 2 and retry.countdown_s == 17


def test_the_park_is_counted_from_the_tasks_start_not_from_the_retrys_queueing() -> None:
    """The park was measured when the task started, and the retry's countdown starts only
    after the batch's sends (a probe that hung 4 s and parked the target 20 s): backoffs of
    2.9, 5.9 and 10 s put the fourth try at 4 + 3 + 6 + 10 = 23 s, after the park. Not dead."""
    retry = next_try(1, 4, 20.0, Factors(1.45, 1.475, 1.25))
    assert retry is not None and retry.skipped == 2
