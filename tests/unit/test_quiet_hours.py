"""Quiet hours: whether a route holds its messages now and until when; the policy check of
``quiet_outside`` and ``always``; a held batch planned and worded as a digest. Pure."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.calendars import CalendarBook
from scheduler.quiet_hours import held_until
from shared.errors import PolicyError
from shared.policy import Policy
from shared.policy_file import parse_policy
from worker.notify.messages import MessageFacts, render_digest
from worker.notify.storm import Pending, StormSettings, plan_sends

MADRID = ZoneInfo("Europe/Madrid")
POLICY = """\
name: desk
default_timezone: Europe/Madrid
calendars:
  office:
    timezone: Europe/Madrid
    hours: {mon: ["09:00-18:00"], tue: ["09:00-18:00"], wed: ["09:00-18:00"],
            thu: ["09:00-18:00"], fri: ["09:00-18:00"]}
    holidays: [2026-04-03]
  customer_office:
    timezone: customer
    hours: {mon: ["09:00-18:00"], tue: ["09:00-18:00"], wed: ["09:00-18:00"],
            thu: ["09:00-18:00"], fri: ["09:00-18:00"]}
priorities: {P1: {}, P4: {}}
plans: {standard: {calendar: office}}
default_plan: standard
targets:
  - {priority: P1, first_response: 1h}
  - {priority: P4, first_response: 3d}
channels: {team: {}, phone: {}}
routes:
  - {name: reminders, when: {priorities: [P4]}, channels: [team], quiet_outside: office}
  - {name: pages, when: {priorities: [P1]}, channels: [phone], always: true}
  - {name: plain, channels: [team]}
  - {name: theirs, channels: [team], quiet_outside: customer_office}
"""


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MADRID)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(POLICY, "desk.yaml")


def until(policy: Policy, route: str, at: str) -> datetime | None:
    (spec,) = [r for r in policy.routes if r.name == route]
    return held_until(spec, CalendarBook(policy), policy.default_timezone, local(at))


@pytest.mark.parametrize(
    ("at", "release"),
    [
        ("2026-03-03 10:00", None),  # Tuesday, open: sent now
        ("2026-03-03 09:00", None),  # the opening instant is open
        ("2026-03-03 07:30", "2026-03-03 09:00"),  # before opening: this morning
        ("2026-03-03 18:00", "2026-03-04 09:00"),  # the closing instant is closed
        ("2026-03-03 23:10", "2026-03-04 09:00"),  # at night: tomorrow morning
        ("2026-03-06 19:00", "2026-03-09 09:00"),  # Friday evening: Monday, past the weekend
        ("2026-03-08 12:00", "2026-03-09 09:00"),  # Sunday noon: Monday
        ("2026-04-02 20:00", "2026-04-06 09:00"),  # before a Friday holiday: Monday
        ("2026-03-27 19:00", "2026-03-30 09:00"),  # across the change to summer time (CEST)
    ],
)
def test_a_quiet_route_holds_until_its_calendars_next_opening(
    policy: Policy, at: str, release: str | None
) -> None:
    """Outside its calendar's hours a quiet route holds until the next opening (weekends and
    holidays skipped, in the calendar's wall-clock time); inside them it sends now."""
    assert until(policy, "reminders", at) == (local(release) if release else None)


def test_an_always_route_and_a_route_without_quiet_hours_are_never_held(policy: Policy) -> None:
    """A P1 page goes out at 03:00 on a Sunday; so does a route that names no calendar."""
    assert until(policy, "pages", "2026-03-08 03:00") is None
    assert until(policy, "plain", "2026-03-08 03:00") is None


def test_a_customer_zone_calendar_keeps_the_desks_quiet_hours(policy: Policy) -> None:
    """``timezone: customer`` is read in the policy's default zone: the desk's night."""
    assert until(policy, "theirs", "2026-03-03 23:10") == local("2026-03-04 09:00")


def problems_of(routes: str) -> list[str]:
    text = POLICY.split("routes:\n", 1)[0] + "routes:\n" + routes
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "desk.yaml")
    return [line.split(":", 2)[2].strip() for line in str(caught.value).splitlines()]


def test_the_check_refuses_quiet_hours_on_an_always_route_and_an_unknown_calendar() -> None:
    """An ``always`` route is never held, so it cannot name quiet hours; and the calendar must
    be one of the policy's."""
    both = "  - {name: p, channels: [phone], always: true, quiet_outside: office}\n"
    (problem,) = problems_of(both)
    assert "`always: true` is never held" in problem
    unknown = "  - {name: p, channels: [team], quiet_outside: ofice}\n"
    (problem,) = problems_of(unknown)
    assert "unknown calendar 'ofice'" in problem


def test_a_released_batch_is_a_digest_per_channel_however_few() -> None:
    """Released together, held notifications make one digest per channel even when fewer
    than the storm threshold, or with storms off; a note on a ticket still goes alone."""
    held = [
        Pending(1, "team", "en", (0,)),
        Pending(2, "team", "en", (0,)),
        Pending(3, "chat", "en", (0,)),
        Pending(4, "team", "en", (0,), alone=True),
    ]
    for storm in (StormSettings(threshold=50), StormSettings(threshold=0)):
        sends = plan_sends(held, storm, batch=True)
        shape = sorted((s.channel, s.ids, s.digest) for s in sends)
        assert shape == [("chat", (3,), True), ("team", (1, 2), True), ("team", (4,), False)]
    assert not any(s.digest for s in plan_sends(held, StormSettings(threshold=50)))


def test_a_held_digest_says_it_waited_for_the_quiet_hours_to_end() -> None:
    """Its title is no storm: it names the quiet hours, in the policy's language, and its
    line is the reminder's."""
    one = MessageFacts(
        ticket_id="7",
        source="zendesk",
        customer=None,
        priority="P4",
        plan="standard",
        kind="reminder",
        metric="update",
        percent=None,
        tier=None,
        due_at=local("2026-03-03 23:10"),
        tz=MADRID,
        link=None,
        dedupe_key="7:reminders:team:0",
    )
    message = render_digest("en", [one], local("2026-03-04 09:00"), held=True)
    assert message.title == "Quiet hours over: 1 SLA alerts held (P4 ×1)"
    assert message.body.splitlines()[2].startswith("- [P4] zendesk/7: ")
    spanish = render_digest("es", [one], local("2026-03-04 09:00"), held=True)
    assert spanish.title == "Fin del horario de silencio: 1 alertas de SLA retenidas (P4 ×1)"
