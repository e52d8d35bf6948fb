"""Which fired checkpoints page nobody (`worker.notify.catch_up`): a table of clocks found due
together, as late events leave them, and what an on-call engineer is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.db.models import NotPaged
from shared.policy_catch_up import CatchUp
from shared.policy_file import parse_policy
from tests.support import PRESETS, preset
from worker.notify.catch_up import CatchUpRule, Due, Silence, clock_of, silence

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LATEST, ALL = CatchUpRule(CatchUp.LATEST), CatchUpRule(CatchUp.ALL)


def _due(key: str, minutes: float, ticket: int = 1) -> Due:
    kind = "escalation" if key.startswith("escalation") else key.split(":")[1]
    return Due(ticket, key, kind, T0 + timedelta(minutes=minutes))


# A P1 ticket's first response (30 min), an update clock with reminders, two escalation tiers.
TICKET = [
    _due("first_response:warning:75", 22.5),
    _due("first_response:warning:90", 27),
    _due("first_response:breach", 30),
    _due("escalation:tier2", 40),
    _due("escalation:tier3", 50),
    _due("update#1:warning:75", 90),
    _due("update#1:breach", 120),
    _due("update#1:reminder:1", 240),
    _due("update#1:reminder:2", 360),
]


def _pages(rule: CatchUpRule, now_minutes: float) -> dict[str, str | None]:
    """Every checkpoint due by then, fired then: None if it pages, else why not."""
    now = T0 + timedelta(minutes=now_minutes)
    due = [c for c in TICKET if c.due_at <= now]
    return {c.key: _said(silence(c, rule, TICKET, now)) for c in due}


def _said(why: Silence | None) -> str | None:
    return None if why is None else str(why)


def test_a_late_ticket_pages_the_breach_and_not_the_warnings_it_passed() -> None:
    """75 %, 90 % and the breach due together: the breach pages; the warnings say what took
    their place."""
    assert _pages(LATEST, 31) == {
        "first_response:warning:75": "caught up by first_response:breach",
        "first_response:warning:90": "caught up by first_response:breach",
        "first_response:breach": None,
    }


def test_catch_up_all_pages_every_one_as_before() -> None:
    assert _pages(ALL, 31) == dict.fromkeys(
        ["first_response:warning:75", "first_response:warning:90", "first_response:breach"]
    )


def test_a_warning_fired_on_time_pages_as_before() -> None:
    """The next checkpoint of its clock is not due yet: nothing changes on the on-time path."""
    assert _pages(LATEST, 22.5 + 0.02 / 60) == {"first_response:warning:75": None}


def test_the_later_warning_takes_the_place_of_the_earlier_one_before_the_breach() -> None:
    assert _pages(LATEST, 28) == {
        "first_response:warning:75": "caught up by first_response:warning:90",
        "first_response:warning:90": None,
    }


def test_clocks_of_one_ticket_do_not_catch_each_other_up() -> None:
    """Hours late, each clock pages its own most advanced checkpoint; a breach always pages;
    the last reminder takes the earlier ones' place; both escalation tiers page."""
    assert _pages(LATEST, 400) == {
        "first_response:warning:75": "caught up by first_response:breach",
        "first_response:warning:90": "caught up by first_response:breach",
        "first_response:breach": None,
        "escalation:tier2": None,
        "escalation:tier3": None,
        "update#1:warning:75": "caught up by update#1:reminder:2",
        "update#1:breach": None,
        "update#1:reminder:1": "caught up by update#1:reminder:2",
        "update#1:reminder:2": None,
    }


def test_another_tickets_checkpoints_catch_up_nothing() -> None:
    now = T0 + timedelta(minutes=31)
    other = [_due("first_response:breach", 30, ticket=2)]
    assert silence(_due("first_response:warning:90", 27), LATEST, other, now) is None


def test_a_checkpoint_not_due_yet_catches_up_nothing() -> None:
    now = T0 + timedelta(minutes=29)
    assert silence(TICKET[1], LATEST, TICKET, now) is None


def test_older_than_max_catch_up_pages_nobody_whatever_its_kind() -> None:
    """With max_catch_up 1h, fired at 18:00: the first-response breach (2 h 30 old), its
    warnings and the tier-2 escalation page nobody; the update breach, exactly an hour old,
    still pages; fired just after it, its warning is caught up by it. ``catch_up: all`` keeps
    the limit."""
    rule = CatchUpRule(CatchUp.LATEST, timedelta(hours=1))
    pages = _pages(rule, 180)
    assert pages["first_response:breach"] == "older than max_catch_up"
    assert pages["escalation:tier2"] == "older than max_catch_up"
    assert pages["first_response:warning:90"] == "older than max_catch_up"
    assert pages["update#1:breach"] is None
    assert _pages(rule, 121)["update#1:warning:75"] == "caught up by update#1:breach"
    late = T0 + timedelta(hours=4)
    all_but_old = CatchUpRule(CatchUp.ALL, timedelta(hours=1))
    assert silence(TICKET[2], all_but_old, TICKET, late) == Silence(NotPaged.TOO_OLD)


@pytest.mark.parametrize(
    ("key", "kind", "clock"),
    [
        ("first_response:warning:75", "warning", "first_response"),
        ("first_response:warning:30m", "warning", "first_response"),
        ("update#2:breach", "breach", "update#2"),
        ("update#2:reminder:1", "reminder", "update#2"),
        ("resolution:warning:90", "warning", "resolution"),
        ("escalation:tier2", "escalation", None),
        ("escalation:tier2:first_response", "escalation", None),
        ("escalation:requested:ev-7", "escalation", None),
        ("allowance:warning:2026-01-01:80", "warning", None),
    ],
)
def test_a_clock_is_read_off_the_key(key: str, kind: str, clock: str | None) -> None:
    """One ticket's one metric cycle; escalations and allowance warnings stand alone."""
    assert clock_of(key, kind) == clock


def test_the_rule_comes_from_the_policy() -> None:
    """Left out, a policy catches up to the latest and has no age limit; ``max_catch_up: 4h``
    is four hours of the wall clock, whatever the calendars say."""
    assert CatchUpRule.of(preset("soporte-completo")) == CatchUpRule(CatchUp.LATEST, None)
    tuned = parse_policy(PRESETS.joinpath("soporte-completo.yaml").read_text() + TUNED)
    assert CatchUpRule.of(tuned) == CatchUpRule(CatchUp.ALL, timedelta(hours=4))


TUNED = "catch_up: all\nmax_catch_up: 4h\n"
