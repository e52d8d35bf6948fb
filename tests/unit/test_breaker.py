"""When a channel target is parked and for how long (`worker.notify.breaker`): pure."""

from __future__ import annotations

from worker.notify.breaker import Tripped, after_send, open_for_s, wait_s


def test_each_failed_probe_parks_a_target_twice_as_long_up_to_five_minutes() -> None:
    assert [open_for_s(trips) for trips in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


def test_only_a_slow_failure_trips_a_target_and_an_acceptance_closes_it() -> None:
    """A quick refusal (an HTTP 500 in milliseconds) costs nobody else anything: the usual
    retries handle it; a time-out parks the target; an answer ends it."""
    assert after_send(None, failed=True, elapsed_s=0.05, now=100) is None
    tripped = after_send(None, failed=True, elapsed_s=4.0, now=100)
    assert tripped == Tripped(110, 1)
    assert after_send(tripped, failed=True, elapsed_s=0.05, now=111) == tripped
    assert after_send(tripped, failed=True, elapsed_s=4.0, now=111) == Tripped(131, 2)
    assert after_send(tripped, failed=False, elapsed_s=0.1, now=111) is None


def test_a_parked_target_waits_until_its_period_ends_then_is_tried() -> None:
    state = Tripped(110, 1)
    assert wait_s(state, 100) == 10
    assert wait_s(state, 110) is None
    assert wait_s(None, 100) is None
    assert Tripped.decode(state.encode()) == state
