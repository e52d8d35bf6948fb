"""What a failed delivery leads to, decided in one place, and storm settings checked at start."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.db.models import NotificationState
from shared.policy_routes import RouteSpec
from tests.support import ROOT
from worker.notify.retry import (
    UNFINISHED,
    Dead,
    Failure,
    Retry,
    backoff_s,
    retry_decision,
)
from worker.notify.storm import StormSettings


class Extreme(random.Random):
    """Jitter always at the low or the high end of its range."""

    def __init__(self, high: bool) -> None:
        super().__init__()
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def route(attempts: int = 5, fallback: str | None = "support_email") -> RouteSpec:
    return RouteSpec.model_validate(
        {"name": "page", "channels": ["oncall_phone"], "attempts": attempts, "fallback": fallback}
    )


def decide(
    attempt: int,
    failure: Failure = Failure.TARGETS,
    on: RouteSpec | None = None,
    rng: random.Random | None = None,
) -> Retry | Dead:
    return retry_decision(
        attempt,
        failure,
        route() if on is None else on,
        channel="oncall_phone",
        rng=rng or random.Random(7),
    )


def bounds(attempt: int) -> tuple[float, float]:
    low = decide(attempt, rng=Extreme(high=False))
    high = decide(attempt, rng=Extreme(high=True))
    assert isinstance(low, Retry) and isinstance(high, Retry)
    return low.in_s, high.in_s


def test_a_failed_target_is_tried_again_with_a_doubling_backoff_while_attempts_are_left() -> None:
    # ~2, 4, 8, 16 s, half as much to half as much again: a sink down for a moment is retried
    # within seconds, not hammered
    assert [bounds(attempt) for attempt in (1, 2, 3, 4)] == [
        (1.0, 3.0),
        (2.0, 6.0),
        (4.0, 12.0),
        (8.0, 24.0),
    ]
    for seed in range(200):
        decision = decide(1, rng=random.Random(seed))
        assert isinstance(decision, Retry) and 1.0 <= decision.in_s <= 3.0


def test_the_backoff_levels_off_at_five_minutes_and_with_jitter_never_exceeds_7_5() -> None:
    long_route = route(attempts=20)
    for attempt in (9, 12, 19):
        low = decide(attempt, on=long_route, rng=Extreme(high=False))
        high = decide(attempt, on=long_route, rng=Extreme(high=True))
        assert low == Retry(150.0) and high == Retry(450.0)
    # under the broker's visibility timeout (1 h): a queued retry is not handed out twice
    assert (
        max(backoff_s(a, Extreme(high=True)) for a in range(1, 21))
        < Settings().broker_visibility_timeout_s
    )


def test_a_retry_is_queued_in_whole_seconds_never_before_its_backoff() -> None:
    assert [Retry(s).countdown_s for s in (1.0, 1.2, 2.0, 2.999, 449.5)] == [1, 2, 2, 3, 450]


def test_out_of_attempts_the_notification_is_dead_and_the_fallback_channel_is_told() -> None:
    assert isinstance(decide(4, on=route(attempts=5)), Retry)
    assert decide(5, on=route(attempts=5)) == Dead("support_email")
    assert decide(1, on=route(attempts=1)) == Dead("support_email")  # one attempt: no retry


def test_a_channel_without_urls_is_dead_at_once_whatever_attempts_are_left() -> None:
    # no retry can set ESCALERA_CHANNEL_<NAME>: the fallback is told now, not in half an hour
    assert decide(0, Failure.NOT_CONFIGURED) == Dead("support_email")
    assert decide(0, Failure.NOT_CONFIGURED, on=route(fallback=None)) == Dead(None)


def test_without_a_fallback_or_with_itself_as_fallback_nobody_else_is_told() -> None:
    assert decide(5, on=route(fallback=None)) == Dead(None)
    assert decide(5, on=route(fallback="oncall_phone")) == Dead(None)  # never itself again


def test_a_page_whose_target_is_parked_past_its_retries_goes_to_the_fallback_now() -> None:
    """A phone parked for 30 s (not answering, `worker.notify.breaker`) would still be parked
    at every one of a 3-attempt page's retries (at most 3 + 6 s after its first try): the
    fallback is told now. Parked for less, the page is retried as usual."""
    three = route(attempts=3)
    assert retry_decision(
        1, Failure.TARGETS, three, channel="oncall_phone", rng=Extreme(high=True), parked_s=30
    ) == Dead("support_email")
    assert isinstance(
        retry_decision(
            1, Failure.TARGETS, three, channel="oncall_phone", rng=Extreme(high=True), parked_s=8
        ),
        Retry,
    )


def test_a_route_gone_from_its_policy_gets_no_retry_and_no_fallback() -> None:
    for failure in Failure:
        assert (
            retry_decision(1, failure, None, channel="oncall_phone", rng=Extreme(high=False))
            == Dead()
        )


def test_each_decision_is_stored_as_the_state_the_database_has_always_held() -> None:
    # skipped: acknowledged first; held: written in its route's quiet hours
    states = ["pending", "retrying", "sent", "dead", "skipped", "held"]
    assert [state.value for state in NotificationState] == states
    assert (Retry(2.0).state, Dead().state) == ("retrying", "dead")
    # what a fire task delivers again when it finds its checkpoint fired before
    assert set(UNFINISHED) == {"pending", "retrying"}


def test_storm_settings_are_read_with_the_other_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALERA_STORM_THRESHOLD", "25")
    monkeypatch.setenv("ESCALERA_STORM_DIGEST_MAX", " ")  # blank: the default
    assert StormSettings.from_settings(Settings()) == StormSettings(25, 200)
    monkeypatch.setenv("ESCALERA_STORM_THRESHOLD", "1.5")
    with pytest.raises(ValidationError, match=r"ESCALERA_STORM_THRESHOLD='1\.5': write a whole"):
        Settings()


def test_a_bad_storm_setting_stops_the_worker_at_start_naming_the_variable(tmp_path: Path) -> None:
    """Refused before the worker serves anything, not when the first storm fires."""
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "worker"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "ESCALERA_STORM_DIGEST_MAX": "1",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'escalera.db'}",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens: it must not get that far
        },
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "ESCALERA_STORM_DIGEST_MAX='1': write a whole number, at least 2" in done.stderr
    assert not (tmp_path / "escalera.db").exists()
