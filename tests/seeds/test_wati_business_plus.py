"""Seed 002 — Wati Business+ premium support (deploy/policies/wati-business-plus.yaml).

| severity    | first response | resolution      |
| Urgent (P1) | 30 min         | 4 h             |
| High (P2)   | 1 h            | 8 h             |
| Medium (P3) | 2 h            | 1 business day  |
| Low (P4)    | 4 h            | 2 business days |

24/7 including weekends and holidays; not resolved in time -> escalated automatically; the
customer may ask for escalation. A business day of this plan is one day of that 24/7 service,
24 hours on any day: a P3 opened Saturday 10:00 is due Sunday 10:00, not Tuesday. Deadlines are
shown in the customer's zone (UTC when the ticket carries none); the automatic escalation goes
to tier 2.

Expected instants are worked out by hand (December 2026: Tue 15, Fri 18, Sat 19, Sun 20,
Mon 21, Tue 22, Thu 24, Fri 25 = Christmas, Sat 26, Sun 27, Mon 28).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import State
from scheduler.sla import Checkpoint, Kind, TicketSla
from shared.policy import Policy
from tests.support import Ticket, preset

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30, no daylight saving time
ESCALATION = "escalation:tier2:resolution"


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC instant in December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def kolkata(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall time in Kolkata in December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=KOLKATA)


TUESDAY = utc(15, 10)
FRIDAY_NIGHT = utc(18, 20)
SATURDAY_NIGHT = utc(26, 22)
CHRISTMAS = utc(25, 9)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return preset("wati-business-plus")


def escalations(sla: TicketSla) -> list[Checkpoint]:
    return [c for c in sla.checkpoints if c.kind is Kind.ESCALATION]


# -- first response: round the clock -----------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "created", "due"),
    [
        ("P1", TUESDAY, utc(15, 10, 30)),
        ("P2", TUESDAY, utc(15, 11)),
        ("P3", TUESDAY, utc(15, 12)),
        ("P4", TUESDAY, utc(15, 14)),
        # A Saturday night: weekends count.
        ("P1", SATURDAY_NIGHT, utc(26, 22, 30)),
        ("P2", SATURDAY_NIGHT, utc(26, 23)),
        ("P3", SATURDAY_NIGHT, utc(27, 0)),
        ("P4", SATURDAY_NIGHT, utc(27, 2)),
        # Christmas Day: holidays count.
        ("P1", CHRISTMAS, utc(25, 9, 30)),
        ("P2", CHRISTMAS, utc(25, 10)),
        ("P3", CHRISTMAS, utc(25, 11)),
        ("P4", CHRISTMAS, utc(25, 13)),
        # Friday 20:00: nothing waits for Monday.
        ("P3", FRIDAY_NIGHT, utc(18, 22)),
        ("P4", FRIDAY_NIGHT, utc(19, 0)),
    ],
)
def test_first_response_deadline_round_the_clock(
    policy: Policy, priority: str, created: datetime, due: datetime
) -> None:
    """First response is due 30 min / 1 h / 2 h / 4 h later, weekends and holidays included."""
    sla = Ticket(created, priority=priority).sla(policy, created)
    first = sla.metrics["first_response"]
    assert sla.priority == priority
    assert first.state is State.RUNNING
    assert first.due_at == due
    assert {c.key: c.due_at for c in sla.checkpoints}["first_response:breach"] == due


@pytest.mark.parametrize(
    ("word", "priority"),
    [
        ("Urgent", "P1"),
        ("URGENTE", "P1"),
        ("High", "P2"),
        ("alto", "P2"),
        ("Medium", "P3"),
        ("MEDIO", "P3"),
        ("Low", "P4"),
        ("bajo", "P4"),
    ],
)
def test_severity_names_pick_the_priority(policy: Policy, word: str, priority: str) -> None:
    """The page's severity names (English or Spanish, any case) pick the matching priority."""
    assert Ticket(TUESDAY, priority=word).sla(policy, TUESDAY).priority == priority


@pytest.mark.parametrize(
    ("reply", "state"),
    [(utc(25, 9, 29), State.MET), (utc(25, 9, 31), State.BREACHED)],
)
def test_urgent_answered_on_christmas(policy: Policy, reply: datetime, state: State) -> None:
    """An Urgent ticket on Christmas morning must be answered within 30 min like any other day."""
    sla = Ticket(CHRISTMAS, priority="P1").reply(reply).sla(policy, utc(25, 12))
    first = sla.metrics["first_response"]
    assert first.state is state
    assert first.completed_at == reply


# -- resolution --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "created", "due"),
    [
        # P1 4 h and P2 8 h run round the clock.
        ("P1", TUESDAY, utc(15, 14)),
        ("P2", TUESDAY, utc(15, 18)),
        ("P1", SATURDAY_NIGHT, utc(27, 2)),
        ("P2", SATURDAY_NIGHT, utc(27, 6)),
        ("P1", CHRISTMAS, utc(25, 13)),
        ("P2", CHRISTMAS, utc(25, 17)),
        ("P1", FRIDAY_NIGHT, utc(19, 0)),
        ("P2", FRIDAY_NIGHT, utc(19, 4)),
        # P3 1 and P4 2 business days: 24 h of the 24/7 service each, on any day.
        ("P3", TUESDAY, utc(16, 10)),
        ("P4", TUESDAY, utc(17, 10)),
        # Friday 20:00: the weekend is worked.
        ("P3", FRIDAY_NIGHT, utc(19, 20)),
        ("P4", FRIDAY_NIGHT, utc(20, 20)),
        ("P3", SATURDAY_NIGHT, utc(27, 22)),
        ("P4", SATURDAY_NIGHT, utc(28, 22)),
        # Christmas Eve: the service runs on holidays, so Christmas Day counts.
        ("P3", utc(24, 20), utc(25, 20)),
        ("P4", utc(24, 20), utc(26, 20)),
    ],
)
def test_resolution_deadline_round_the_clock(
    policy: Policy, priority: str, created: datetime, due: datetime
) -> None:
    """Resolution: 4 h / 8 h, and 1 / 2 business days of 24 h, weekends and holidays included."""
    sla = Ticket(created, priority=priority).sla(policy, created)
    resolution = sla.metrics["resolution"]
    assert resolution.state is State.RUNNING
    assert resolution.due_at == due
    assert {c.key: c.due_at for c in sla.checkpoints}["resolution:breach"] == due


@pytest.mark.parametrize("zone", [None, "Asia/Kolkata", "America/New_York"])
def test_medium_opened_saturday_morning_is_due_sunday_morning(
    policy: Policy, zone: str | None
) -> None:
    """A Medium ticket opened Saturday 10:00 (the customer's time) is due Sunday 10:00, not
    Tuesday, and goes to tier 2 then if still unresolved."""
    tz = ZoneInfo(zone or "UTC")
    opened = datetime(2026, 12, 19, 10, tzinfo=tz)
    sunday = datetime(2026, 12, 20, 10, tzinfo=tz)
    fields = {"customer_timezone": zone} if zone else {}
    ticket = Ticket(opened, priority="Medium", **fields).reply(opened + timedelta(minutes=30))

    waiting = ticket.sla(policy, sunday - timedelta(minutes=1))
    resolution = waiting.metrics["resolution"]
    assert (resolution.state, resolution.due_at) == (State.RUNNING, sunday)
    assert resolution.tz.key == (zone or "UTC")
    assert [(c.key, c.due_at, c.fired) for c in escalations(waiting)] == [
        (ESCALATION, sunday, False)
    ]

    late = ticket.sla(policy, sunday + timedelta(minutes=1))
    assert late.metrics["resolution"].breached_at == sunday
    assert [(c.key, c.tier, c.fired) for c in escalations(late)] == [(ESCALATION, 2, True)]


def test_a_business_day_is_24_real_hours_across_a_clock_change(policy: Policy) -> None:
    """New York springs forward on Sunday 8 March 2026: a Low ticket opened Saturday 10:00 EST
    is due 48 hours later, Monday 11:00 EDT (a wall-clock Monday 10:00 would be 47 hours)."""
    new_york = ZoneInfo("America/New_York")
    opened = datetime(2026, 3, 7, 10, tzinfo=new_york)
    ticket = Ticket(opened, priority="P4", customer_timezone="America/New_York")
    due = ticket.sla(policy, opened).metrics["resolution"].due_at
    assert due == datetime(2026, 3, 9, 11, tzinfo=new_york)
    assert due - opened == timedelta(hours=48)


@pytest.mark.parametrize(
    ("zone", "due"),
    [
        (None, utc(19, 20)),
        ("Asia/Kolkata", kolkata(20, 1, 30)),
        ("America/New_York", datetime(2026, 12, 19, 15, tzinfo=ZoneInfo("America/New_York"))),
    ],
)
def test_same_instant_same_deadline_in_every_customer_zone(
    policy: Policy, zone: str | None, due: datetime
) -> None:
    """A Medium ticket opened Friday 20:00 UTC is due Saturday 20:00 UTC wherever the customer
    is (their weekend changes nothing), shown in their own zone."""
    fields = {"customer_timezone": zone} if zone else {}
    ticket = Ticket(FRIDAY_NIGHT, priority="P3", **fields)
    resolution = ticket.sla(policy, FRIDAY_NIGHT).metrics["resolution"]
    assert resolution.due_at == due == utc(19, 20)
    assert resolution.tz.key == (zone or "UTC")


def test_first_response_ignores_the_customers_weekend(policy: Policy) -> None:
    """A Kolkata customer's Medium ticket on Friday night is still answered within 2 h."""
    ticket = Ticket(kolkata(18, 23), priority="P3", customer_timezone="Asia/Kolkata")
    assert ticket.sla(policy, kolkata(18, 23)).metrics["first_response"].due_at == kolkata(19, 1)


def test_resolved_in_time(policy: Policy) -> None:
    """A High ticket resolved within 8 h meets its resolution target."""
    sla = (
        Ticket(TUESDAY, priority="P2")
        .reply(utc(15, 10, 20))
        .add("resolved", utc(15, 17))
        .sla(policy, utc(16, 10))
    )
    resolution = sla.metrics["resolution"]
    assert resolution.state is State.MET
    assert resolution.completed_at == utc(15, 17)
    assert resolution.due_at == utc(15, 18)


def test_pending_stops_the_resolution_clock(policy: Policy) -> None:
    """Two hours waiting on the customer push an Urgent ticket's resolution from 14:00 to 16:00."""
    ticket = Ticket(TUESDAY, priority="P1").status(utc(15, 11), "pending")
    paused = ticket.sla(policy, utc(15, 12)).metrics["resolution"]
    assert paused.state is State.PAUSED
    assert paused.due_at is None
    sla = ticket.status(utc(15, 13), "open").sla(policy, utc(15, 13, 30))
    assert sla.metrics["resolution"].due_at == utc(15, 16)
    assert [(c.key, c.due_at) for c in escalations(sla)] == [(ESCALATION, utc(15, 16))]


# -- automatic escalation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "created", "breach"),
    [
        ("P1", TUESDAY, utc(15, 14)),
        ("P2", TUESDAY, utc(15, 18)),
        ("P3", TUESDAY, utc(16, 10)),
        ("P4", TUESDAY, utc(17, 10)),
        ("P3", FRIDAY_NIGHT, utc(19, 20)),
        ("P4", FRIDAY_NIGHT, utc(20, 20)),
    ],
)
def test_unresolved_ticket_escalates_to_tier_2_at_the_resolution_deadline(
    policy: Policy, priority: str, created: datetime, breach: datetime
) -> None:
    """A ticket not resolved in time goes to tier 2 at the resolution deadline, not before."""
    ticket = Ticket(created, priority=priority).reply(created + timedelta(minutes=10))

    before = escalations(ticket.sla(policy, breach - timedelta(minutes=1)))
    assert [(c.key, c.tier, c.due_at, c.fired) for c in before] == [(ESCALATION, 2, breach, False)]

    sla = ticket.sla(policy, breach + timedelta(minutes=1))
    after = escalations(sla)
    assert [(c.key, c.tier, c.due_at, c.fired) for c in after] == [(ESCALATION, 2, breach, True)]
    assert after[0].metric == "resolution"
    assert sla.metrics["resolution"].state is State.BREACHED
    assert sla.metrics["resolution"].breached_at == breach


def test_escalation_fires_at_the_exact_deadline(policy: Policy) -> None:
    """At 14:00 sharp an Urgent ticket opened at 10:00 and still open is escalated."""
    [checkpoint] = escalations(Ticket(TUESDAY, priority="P1").sla(policy, utc(15, 14)))
    assert checkpoint.key == ESCALATION
    assert checkpoint.fired


@pytest.mark.parametrize(
    ("priority", "resolved"),
    [
        ("P1", utc(15, 13, 59)),
        ("P2", utc(15, 17)),
        ("P3", utc(16, 9)),
        ("P4", utc(17, 9)),
    ],
)
def test_no_escalation_when_resolved_in_time(
    policy: Policy, priority: str, resolved: datetime
) -> None:
    """A ticket resolved before its resolution deadline is never escalated."""
    ticket = Ticket(TUESDAY, priority=priority).reply(utc(15, 10, 10)).add("resolved", resolved)
    sla = ticket.sla(policy, utc(31, 0))
    assert sla.metrics["resolution"].state is State.MET
    assert escalations(sla) == []


def test_late_resolution_keeps_the_escalation_that_happened(policy: Policy) -> None:
    """An Urgent ticket resolved late (15:00, due 14:00) stays escalated, once, to tier 2."""
    ticket = Ticket(TUESDAY, priority="P1").reply(utc(15, 10, 10)).add("resolved", utc(15, 15))
    sla = ticket.sla(policy, utc(16, 0))
    assert sla.metrics["resolution"].state is State.BREACHED
    assert [(c.key, c.tier, c.due_at, c.fired) for c in escalations(sla)] == [
        (ESCALATION, 2, utc(15, 14), True)
    ]


# -- escalation at the customer's request ------------------------------------------------------


@pytest.mark.parametrize(
    ("already", "requested", "tier"),
    [
        (None, None, 2),  # no tier named: the next one above tier 1
        (None, 3, 3),  # the tier the request names
        (2, None, 3),  # already with tier 2: the next is tier 3
        (2, 4, 4),
    ],
)
def test_customer_requested_escalation_is_immediate(
    policy: Policy, already: int | None, requested: int | None, tier: int
) -> None:
    """A customer's escalation request escalates at once, to the tier asked or the next one."""
    ticket = Ticket(TUESDAY, priority="P3")
    if already is not None:
        ticket.add("assigned", utc(15, 10, 30), tier=already)
    fields = {"tier": requested} if requested is not None else {}
    ticket.add("escalation_requested", utc(15, 11), **fields)
    request_id = ticket.events[-1].event_id

    sla = ticket.sla(policy, utc(15, 11))
    requested_now = [c for c in escalations(sla) if c.key.startswith("escalation:requested:")]
    assert [(c.key, c.tier, c.due_at, c.fired) for c in requested_now] == [
        (f"escalation:requested:{request_id}", tier, utc(15, 11), True)
    ]
    # The automatic escalation at the resolution deadline is still there, separately.
    assert {c.key: c.due_at for c in escalations(sla)}[ESCALATION] == utc(16, 10)


def test_two_requests_make_two_escalations(policy: Policy) -> None:
    """Each escalation request from the customer is its own escalation, at its own time."""
    ticket = Ticket(TUESDAY, priority="P4").add("escalation_requested", utc(15, 11))
    ticket.add("escalation_requested", utc(15, 12), tier=3)
    first_id, second_id = (e.event_id for e in ticket.events[1:])
    got = {
        c.key: (c.tier, c.due_at, c.fired)
        for c in escalations(ticket.sla(policy, utc(15, 12)))
        if c.key.startswith("escalation:requested:")
    }
    assert got == {
        f"escalation:requested:{first_id}": (2, utc(15, 11), True),
        f"escalation:requested:{second_id}": (3, utc(15, 12), True),
    }


def test_request_not_yet_made_is_not_an_escalation(policy: Policy) -> None:
    """An escalation request timed after the moment looked at has not happened yet."""
    ticket = Ticket(TUESDAY, priority="P2").add("escalation_requested", utc(15, 12))
    sla = ticket.sla(policy, utc(15, 11))
    assert not [c for c in escalations(sla) if c.key.startswith("escalation:requested:")]
