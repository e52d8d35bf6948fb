"""Seed 003 — Zmanda support policy, replayed against deploy/policies/zmanda.yaml.

Every number of the seed digest (/work/shared/seeds/README.md, seed 003) has a ticket here: the
nine cells of the urgency x impact matrix, the customer's override, the four standard and the
four premium first-response times, trial customers on premium times and community users with no
SLA. Standard times are working hours of Mon–Fri 08:00–17:00 in the *customer's* zone
(America/Los_Angeles when the ticket does not say), so P4's 24 h is 2 days and 6 hours of that
week; the preset promises only first response.

Every expected instant below was worked out by hand from the seed's numbers and the calendar,
and is written in the zone a support lead would read it in. Aware datetimes compare as instants,
so ``datetime(..., tzinfo=MADRID) == due_at`` holds whatever zone the engine reports in.

Dates used (2026): Mon 2 March, Wed 4 March, Sat 7 March. The US moves to summer time on Sun
8 March, Spain on Sun 29 March and back on Sun 25 October. Mexico City keeps UTC-6 all year.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from scheduler.calendar import zone
from scheduler.clock import State
from scheduler.sla import Kind, TicketSla
from tests.support import Ticket, hours, preset

LOS_ANGELES = zone("America/Los_Angeles")
MEXICO_CITY = zone("America/Mexico_City")
NEW_YORK = zone("America/New_York")
MADRID = zone("Europe/Madrid")
TOKYO = zone("Asia/Tokyo")

METRICS = ("first_response", "update", "resolution")


def at(tz: tzinfo, *fields: int) -> datetime:
    """A wall-clock time in ``tz``: ``at(MADRID, 2026, 3, 2, 9)`` (year, month, day, h, m, s)."""
    year, month, day, *clock = fields
    return datetime(year, month, day, *clock, tzinfo=tz)


def evaluate_ticket(
    created_at: datetime, now: datetime | None = None, **created: object
) -> TicketSla:
    return Ticket(created_at, **created).sla(preset("zmanda"), now or created_at)


# -- priority: urgency x impact --------------------------------------------------------------

# Premium (24x7) so that each derived priority shows up as its own premium deadline.
MATRIX_CREATED = at(UTC, 2026, 3, 2, 12)


@pytest.mark.parametrize(
    ("urgency", "impact", "priority", "due"),
    [
        ("high", "high", "P1", at(UTC, 2026, 3, 2, 12, 15)),
        ("high", "medium", "P2", at(UTC, 2026, 3, 2, 13)),
        ("high", "low", "P3", at(UTC, 2026, 3, 2, 16)),
        ("medium", "high", "P2", at(UTC, 2026, 3, 2, 13)),
        ("medium", "medium", "P3", at(UTC, 2026, 3, 2, 16)),
        ("medium", "low", "P4", at(UTC, 2026, 3, 2, 20)),
        ("low", "high", "P3", at(UTC, 2026, 3, 2, 16)),
        ("low", "medium", "P4", at(UTC, 2026, 3, 2, 20)),
        ("low", "low", "P4", at(UTC, 2026, 3, 2, 20)),
    ],
)
def test_matrix_sets_priority_from_urgency_and_impact(
    urgency: str, impact: str, priority: str, due: datetime
) -> None:
    """A ticket filed with urgency and impact but no priority gets the seed matrix's priority."""
    sla = evaluate_ticket(MATRIX_CREATED, plan="premium", urgency=urgency, impact=impact)
    assert sla.priority == priority
    assert sla.metrics["first_response"].due_at == due


@pytest.mark.parametrize(
    ("urgency", "impact", "chosen", "priority", "due"),
    [
        ("high", "high", "P4", "P4", at(UTC, 2026, 3, 2, 20)),
        ("low", "low", "P1", "P1", at(UTC, 2026, 3, 2, 12, 15)),
        ("medium", "medium", "P2", "P2", at(UTC, 2026, 3, 2, 13)),
        ("high", "high", "bajo impacto", "P4", at(UTC, 2026, 3, 2, 20)),
        ("low", "medium", "Crítico", "P1", at(UTC, 2026, 3, 2, 12, 15)),
    ],
)
def test_customer_priority_overrides_matrix(
    urgency: str, impact: str, chosen: str, priority: str, due: datetime
) -> None:
    """When the customer picks a priority it wins over what urgency x impact would give."""
    sla = evaluate_ticket(
        MATRIX_CREATED, plan="premium", urgency=urgency, impact=impact, priority=chosen
    )
    assert sla.priority == priority
    assert sla.metrics["first_response"].due_at == due


# -- standard: working hours in the customer's zone -------------------------------------------

# Wednesday 4 March 2026, 15:00 UTC: 09:00 in Mexico City, 16:00 in Madrid, Thursday 00:00 in
# Tokyo (before opening), 07:00 in Los Angeles (before opening).
SAME_INSTANT = at(UTC, 2026, 3, 4, 15)


@pytest.mark.parametrize(
    ("customer_timezone", "priority", "due"),
    [
        # Mexico City, Wed 09:00: P4 = Wed 8 h + Thu 9 h + Fri 7 h.
        ("America/Mexico_City", "P1", at(MEXICO_CITY, 2026, 3, 4, 10)),
        ("America/Mexico_City", "P2", at(MEXICO_CITY, 2026, 3, 4, 12)),
        ("America/Mexico_City", "P3", at(MEXICO_CITY, 2026, 3, 4, 17)),
        ("America/Mexico_City", "P4", at(MEXICO_CITY, 2026, 3, 6, 15)),
        # Tokyo, Thu 00:00: the clock starts at Thu 08:00; P4 = Thu 9 h + Fri 9 h + Mon 6 h.
        ("Asia/Tokyo", "P1", at(TOKYO, 2026, 3, 5, 9)),
        ("Asia/Tokyo", "P2", at(TOKYO, 2026, 3, 5, 11)),
        ("Asia/Tokyo", "P3", at(TOKYO, 2026, 3, 5, 16)),
        ("Asia/Tokyo", "P4", at(TOKYO, 2026, 3, 9, 14)),
        # Madrid, Wed 16:00: one hour left today; P4 = Wed 1 h + Thu 9 + Fri 9 + Mon 5 h.
        ("Europe/Madrid", "P1", at(MADRID, 2026, 3, 4, 17)),
        ("Europe/Madrid", "P2", at(MADRID, 2026, 3, 5, 10)),
        ("Europe/Madrid", "P3", at(MADRID, 2026, 3, 5, 15)),
        ("Europe/Madrid", "P4", at(MADRID, 2026, 3, 9, 13)),
        # No zone on the ticket: Los Angeles, Wed 07:00 PST, the clock starts at 08:00.
        (None, "P1", at(LOS_ANGELES, 2026, 3, 4, 9)),
        (None, "P2", at(LOS_ANGELES, 2026, 3, 4, 11)),
        (None, "P3", at(LOS_ANGELES, 2026, 3, 4, 16)),
        (None, "P4", at(LOS_ANGELES, 2026, 3, 6, 14)),
    ],
)
def test_standard_first_response_in_customer_working_hours(
    customer_timezone: str | None, priority: str, due: datetime
) -> None:
    """A standard customer's response time runs Mon–Fri 08:00–17:00 on their own local clock."""
    zone_field = {"customer_timezone": customer_timezone} if customer_timezone else {}
    sla = evaluate_ticket(SAME_INSTANT, plan="standard", priority=priority, **zone_field)
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.RUNNING
    assert first_response.due_at == due


def test_same_moment_different_zones_gives_different_deadlines() -> None:
    """The same P2 ticket filed at the same instant is due at different times in each zone."""
    due = {
        name: evaluate_ticket(SAME_INSTANT, plan="standard", priority="P2", customer_timezone=name)
        .metrics["first_response"]
        .due_at
        for name in ("America/Mexico_City", "Asia/Tokyo", "Europe/Madrid")
    }
    assert due == {
        "America/Mexico_City": at(UTC, 2026, 3, 4, 18),  # Wed 12:00 CST
        "Asia/Tokyo": at(UTC, 2026, 3, 5, 2),  # Thu 11:00 JST
        "Europe/Madrid": at(UTC, 2026, 3, 5, 9),  # Thu 10:00 CET
    }


def test_unknown_zone_is_served_on_los_angeles_hours() -> None:
    """A ticket that does not say where the customer is gets Los Angeles office hours."""
    # Mon 2 March 17:30 UTC = 09:30 PST: P1 is due 10:30 PST (18:30 UTC), not an hour later in
    # any other zone's morning.
    sla = evaluate_ticket(at(UTC, 2026, 3, 2, 17, 30), plan="standard", priority="P1")
    assert sla.metrics["first_response"].due_at == at(LOS_ANGELES, 2026, 3, 2, 10, 30)
    assert sla.tz.key == "America/Los_Angeles"


@pytest.mark.parametrize(
    ("created", "due"),
    [
        # Monday 08:00: Mon 9 h + Tue 9 h + Wed 6 h = Wednesday 14:00 (not Tuesday 08:00).
        (at(MEXICO_CITY, 2026, 3, 2, 8), at(MEXICO_CITY, 2026, 3, 4, 14)),
        # Thursday 08:00: Thu 9 h + Fri 9 h, the weekend is closed, Mon 6 h.
        (at(MEXICO_CITY, 2026, 3, 5, 8), at(MEXICO_CITY, 2026, 3, 9, 14)),
        # Friday 12:00: Fri 5 h + Mon 9 h + Tue 9 h + Wed 1 h.
        (at(MEXICO_CITY, 2026, 3, 6, 12), at(MEXICO_CITY, 2026, 3, 11, 9)),
    ],
)
def test_p4_standard_is_24_working_hours(created: datetime, due: datetime) -> None:
    """A standard P4's 24 h is 24 office hours (2 days 6 hours of the week), not one calendar day."""
    sla = evaluate_ticket(
        created, plan="standard", priority="P4", customer_timezone="America/Mexico_City"
    )
    assert sla.metrics["first_response"].due_at == due


@pytest.mark.parametrize(
    ("customer_timezone", "priority", "created", "due", "due_utc"),
    [
        # New York springs forward on Sun 8 March 2026. Fri 15:00 EST + 2 h Friday, then Monday
        # from 08:00 EDT: P3 needs 6 h more -> 14:00 EDT = 18:00 UTC (19:00 UTC under EST).
        (
            "America/New_York",
            "P3",
            at(NEW_YORK, 2026, 3, 6, 15),
            at(NEW_YORK, 2026, 3, 9, 14),
            at(UTC, 2026, 3, 9, 18),
        ),
        # P4: Fri 2 h + Mon 9 h + Tue 9 h + Wed 4 h -> Wed 12:00 EDT = 16:00 UTC.
        (
            "America/New_York",
            "P4",
            at(NEW_YORK, 2026, 3, 6, 15),
            at(NEW_YORK, 2026, 3, 11, 12),
            at(UTC, 2026, 3, 11, 16),
        ),
        # P1 filed Sunday 8 March 03:30 EDT (after the jump): starts Monday 08:00 EDT.
        (
            "America/New_York",
            "P1",
            at(NEW_YORK, 2026, 3, 8, 3, 30),
            at(NEW_YORK, 2026, 3, 9, 9),
            at(UTC, 2026, 3, 9, 13),
        ),
        # Madrid springs forward on Sun 29 March. Fri 16:00 CET + 1 h, Mon 08:00 CEST + 2 h.
        (
            "Europe/Madrid",
            "P2",
            at(MADRID, 2026, 3, 27, 16),
            at(MADRID, 2026, 3, 30, 10),
            at(UTC, 2026, 3, 30, 8),
        ),
        # Madrid falls back on Sun 25 October. Fri 16:00 CEST + 1 h, Mon 08:00 CET + 7 h.
        (
            "Europe/Madrid",
            "P3",
            at(MADRID, 2026, 10, 23, 16),
            at(MADRID, 2026, 10, 26, 15),
            at(UTC, 2026, 10, 26, 14),
        ),
    ],
)
def test_standard_hours_follow_daylight_saving_time(
    customer_timezone: str, priority: str, created: datetime, due: datetime, due_utc: datetime
) -> None:
    """Across a clock change the office still opens at 08:00 local, so the deadline shifts in UTC."""
    sla = evaluate_ticket(
        created, plan="standard", priority=priority, customer_timezone=customer_timezone
    )
    due_at = sla.metrics["first_response"].due_at
    assert due_at == due
    assert due_at is not None
    assert due_at.astimezone(UTC) == due_utc


# -- premium and trial: 24x7x365 ----------------------------------------------------------------

# Saturday 7 March 2026, 22:30 in Madrid: the weekend and the night count.
WEEKEND_NIGHT = at(MADRID, 2026, 3, 7, 22, 30)


@pytest.mark.parametrize("plan", ["premium", "trial"])
@pytest.mark.parametrize(
    ("priority", "due"),
    [
        ("P1", at(MADRID, 2026, 3, 7, 22, 45)),  # 15 min
        ("P2", at(MADRID, 2026, 3, 7, 23, 30)),  # 60 min
        ("P3", at(MADRID, 2026, 3, 8, 2, 30)),  # 4 h, into Sunday
        ("P4", at(MADRID, 2026, 3, 8, 6, 30)),  # 8 h
    ],
)
def test_premium_and_trial_respond_round_the_clock(plan: str, priority: str, due: datetime) -> None:
    """Premium customers (and trial customers, who get premium SLAs) are answered 24x7, weekends too."""
    sla = evaluate_ticket(
        WEEKEND_NIGHT, plan=plan, priority=priority, customer_timezone="Europe/Madrid"
    )
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.RUNNING
    assert first_response.due_at == due


@pytest.mark.parametrize(
    "created",
    [
        at(MADRID, 2026, 3, 29, 0, 30),  # as the Madrid wall clock reads it
        at(UTC, 2026, 3, 28, 23, 30),  # the same instant in UTC
        at(timezone(timedelta(hours=1)), 2026, 3, 29, 0, 30),  # and as "+01:00", as in JSON
    ],
    ids=["madrid-zone", "utc", "fixed-offset"],
)
def test_premium_is_24x7_through_a_clock_change(created: datetime) -> None:
    """A premium P4 filed the night Madrid springs forward is due 8 real hours later."""
    # Sun 29 March 2026 00:30 CET = 23:30 UTC Sat; 8 elapsed hours -> 07:30 UTC = 09:30 CEST
    # (the wall clock skips 02:00-03:00, so 8 real hours read as 9 on it).
    sla = evaluate_ticket(created, plan="premium", priority="P4", customer_timezone="Europe/Madrid")
    assert sla.metrics["first_response"].due_at == at(MADRID, 2026, 3, 29, 9, 30)


# -- community: no SLA --------------------------------------------------------------------------


@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4"])
def test_community_users_get_no_sla(priority: str) -> None:
    """Community tickets are best effort: no deadline, no warning and no breach, whatever the priority."""
    created = at(MADRID, 2026, 3, 4, 10)
    sla = evaluate_ticket(
        created, now=created + timedelta(days=30), plan="community", priority=priority
    )
    for name in METRICS:
        metric = sla.metrics[name]
        assert metric.state is State.NOT_APPLICABLE
        assert metric.due_at is None
        assert metric.breached_at is None
    assert sla.checkpoints == ()


def test_community_ticket_filed_by_urgency_and_impact_has_no_sla() -> None:
    """Even a high-urgency, high-impact community ticket (P1) carries no SLA."""
    created = at(MADRID, 2026, 3, 4, 10)
    sla = evaluate_ticket(
        created, now=created + hours(48), plan="community", urgency="high", impact="high"
    )
    assert sla.priority == "P1"
    assert all(sla.metrics[name].state is State.NOT_APPLICABLE for name in METRICS)
    assert sla.checkpoints == ()


# -- what the seed promises and what it does not -----------------------------------------------


@pytest.mark.parametrize("plan", ["standard", "premium", "trial"])
def test_only_first_response_is_promised(plan: str) -> None:
    """Zmanda promises a response time only: no update or resolution deadline is tracked."""
    sla = evaluate_ticket(SAME_INSTANT, plan=plan, priority="P1")
    assert sla.metrics["first_response"].state is State.RUNNING
    assert sla.metrics["update"].state is State.NOT_APPLICABLE
    assert sla.metrics["resolution"].state is State.NOT_APPLICABLE
    assert {c.metric for c in sla.checkpoints} == {"first_response"}


@pytest.mark.parametrize(
    ("plan", "priority", "created", "expected"),
    [
        # Standard P1 (1 h) from Mon 09:00 Mexico City: 75 % at 09:45, 90 % at 09:54.
        (
            "standard",
            "P1",
            at(MEXICO_CITY, 2026, 3, 2, 9),
            [
                ("first_response:warning:75", at(MEXICO_CITY, 2026, 3, 2, 9, 45)),
                ("first_response:warning:90", at(MEXICO_CITY, 2026, 3, 2, 9, 54)),
                ("first_response:breach", at(MEXICO_CITY, 2026, 3, 2, 10)),
            ],
        ),
        # Standard P3 (8 h) from Wed 16:00: 6 h -> Thu 13:00, 7.2 h -> Thu 14:12, 8 h -> Thu 15:00.
        (
            "standard",
            "P3",
            at(MEXICO_CITY, 2026, 3, 4, 16),
            [
                ("first_response:warning:75", at(MEXICO_CITY, 2026, 3, 5, 13)),
                ("first_response:warning:90", at(MEXICO_CITY, 2026, 3, 5, 14, 12)),
                ("first_response:breach", at(MEXICO_CITY, 2026, 3, 5, 15)),
            ],
        ),
        # Premium P1 (15 min) from Sat 10:00: 11 min 15 s, 13 min 30 s, 15 min.
        (
            "premium",
            "P1",
            at(MEXICO_CITY, 2026, 3, 7, 10),
            [
                ("first_response:warning:75", at(MEXICO_CITY, 2026, 3, 7, 10, 11, 15)),
                ("first_response:warning:90", at(MEXICO_CITY, 2026, 3, 7, 10, 13, 30)),
                ("first_response:breach", at(MEXICO_CITY, 2026, 3, 7, 10, 15)),
            ],
        ),
    ],
)
def test_warnings_at_75_and_90_percent_then_breach(
    plan: str, priority: str, created: datetime, expected: list[tuple[str, datetime]]
) -> None:
    """The lead is warned at 75 % and 90 % of the response time and told of the breach at 100 %."""
    sla = evaluate_ticket(
        created, plan=plan, priority=priority, customer_timezone="America/Mexico_City"
    )
    assert [(c.key, c.due_at) for c in sla.checkpoints] == expected
    assert [c.kind for c in sla.checkpoints] == [Kind.WARNING, Kind.WARNING, Kind.BREACH]
    assert not any(c.fired for c in sla.checkpoints)


def test_reply_in_time_meets_the_response_target() -> None:
    """An agent's reply before the deadline meets the response time and cancels its alerts."""
    created = at(MEXICO_CITY, 2026, 3, 2, 9)
    ticket = Ticket(
        created, plan="standard", priority="P2", customer_timezone="America/Mexico_City"
    )
    ticket.reply(created + hours(2))
    sla = ticket.sla(preset("zmanda"), created + hours(5))
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.MET
    assert first_response.completed_at == at(MEXICO_CITY, 2026, 3, 2, 11)
    assert first_response.due_at == at(MEXICO_CITY, 2026, 3, 2, 12)
    assert sla.checkpoints == ()


def test_late_reply_leaves_the_response_breached() -> None:
    """A reply after the deadline does not undo the breach: it is recorded at the deadline."""
    created = at(MEXICO_CITY, 2026, 3, 2, 9)
    ticket = Ticket(
        created, plan="standard", priority="P2", customer_timezone="America/Mexico_City"
    )
    ticket.reply(created + hours(4))
    sla = ticket.sla(preset("zmanda"), created + hours(5))
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.BREACHED
    assert first_response.breached_at == at(MEXICO_CITY, 2026, 3, 2, 12)
    assert first_response.completed_at == at(MEXICO_CITY, 2026, 3, 2, 13)
