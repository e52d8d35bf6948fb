"""Seed 004 — Athento support coverage, replayed against deploy/policies/athento.yaml.

Every number of the seed digest (/work/shared/seeds/README.md, seed 004) has a ticket here: each
plan's hours (Plus 10–14, Standard 10–17, Company 9–18, Enterprise 8–20, Mon–Fri, Europe/Madrid,
closed on Spain's national holidays) and the 32 response and resolution times (4 plans x 4
incident types x 2 metrics). Following the preset's header: hours are working hours of the
plan; "días" are business days as long as the plan's own day (Plus 4 h, Standard 7 h, Company
9 h, Enterprise 12 h); "> 5 días" and "< 30 días" are targets of 5 and 30 business days.

Every expected instant was worked out by hand and is written on the Madrid wall clock. Aware
datetimes compare as instants, so they equal the engine's UTC answers.

Calendar used (2026): Thu 5 March is the reference creation day; Spain springs forward on Sun
29 March; Fri 3 April (Good Friday), Tue 8 December and Fri 25 December are national holidays,
and so are Fri 1 January and Wed 6 January 2027. Thu 2 April and Mon 6 April are regional
only, so they are working days here.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler.calendar import zone
from scheduler.clock import State
from scheduler.sla import Kind, TicketSla
from tests.support import Ticket, hours, preset

MADRID = zone("Europe/Madrid")


def madrid(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    """A time on the Madrid wall clock."""
    return datetime(year, month, day, hour, minute, tzinfo=MADRID)


def evaluate_ticket(
    created_at: datetime, now: datetime | None = None, **created: object
) -> TicketSla:
    return Ticket(created_at, **created).sla(preset("athento"), now or created_at)


# -- the 32 deadlines of the seed tables -------------------------------------------------------

# Thursday 5 March 2026, 11:00: inside every plan's hours, and close enough to a weekend that
# business days and calendar days part ways. Business days after it: d1 Fri 6, d2 Mon 9, d3 Tue
# 10, d4 Wed 11, d5 Thu 12, d7 Mon 16, d10 Thu 19, d15 Thu 26 March; d30 is Fri 17 April
# (Good Friday 3 April is skipped). An N-business-day target from 11:00 ends at 11:00 on dN.
CREATED = madrid(3, 5, 11)

SEED_TABLE = [
    # Plus, 10–14 (4 h a day; 3 h left on Thursday).
    ("plus", "P1", "first_response", madrid(3, 9, 11)),  # 8 h: Thu 3 + Fri 4 + Mon 1
    ("plus", "P1", "resolution", madrid(3, 9, 13)),  # 10 h: Thu 3 + Fri 4 + Mon 3
    ("plus", "P2", "first_response", madrid(3, 10, 11)),  # 3 d
    ("plus", "P2", "resolution", madrid(3, 12, 11)),  # 5 d
    ("plus", "P3", "first_response", madrid(3, 11, 11)),  # 4 d
    ("plus", "P3", "resolution", madrid(3, 19, 11)),  # 10 d
    ("plus", "P4", "first_response", madrid(3, 12, 11)),  # > 5 d
    ("plus", "P4", "resolution", madrid(4, 17, 11)),  # < 30 d
    # Standard, 10–17 (7 h a day; 6 h left on Thursday).
    ("standard", "P1", "first_response", madrid(3, 5, 17)),  # 6 h: ends at closing
    ("standard", "P1", "resolution", madrid(3, 6, 14)),  # 10 h: Thu 6 + Fri 4
    ("standard", "P2", "first_response", madrid(3, 9, 11)),  # 2 d
    ("standard", "P2", "resolution", madrid(3, 12, 11)),  # 5 d
    ("standard", "P3", "first_response", madrid(3, 10, 11)),  # 3 d
    ("standard", "P3", "resolution", madrid(3, 19, 11)),  # 10 d
    ("standard", "P4", "first_response", madrid(3, 11, 11)),  # > 4 d
    ("standard", "P4", "resolution", madrid(4, 17, 11)),  # < 30 d
    # Company, 9–18 (9 h a day; 7 h left on Thursday).
    ("company", "P1", "first_response", madrid(3, 5, 15)),  # 4 h
    ("company", "P1", "resolution", madrid(3, 5, 18)),  # 7 h: ends at closing
    ("company", "P2", "first_response", madrid(3, 6, 10)),  # 8 h: Thu 7 + Fri 1
    ("company", "P2", "resolution", madrid(3, 9, 11)),  # 2 d
    ("company", "P3", "first_response", madrid(3, 9, 11)),  # 2 d
    ("company", "P3", "resolution", madrid(3, 12, 11)),  # 5 d
    ("company", "P4", "first_response", madrid(3, 10, 11)),  # > 3 d
    ("company", "P4", "resolution", madrid(3, 26, 11)),  # < 15 d
    # Enterprise, 8–20 (12 h a day; 9 h left on Thursday).
    ("enterprise", "P1", "first_response", madrid(3, 5, 13)),  # 2 h
    ("enterprise", "P1", "resolution", madrid(3, 5, 15)),  # 4 h
    ("enterprise", "P2", "first_response", madrid(3, 5, 15)),  # 4 h
    ("enterprise", "P2", "resolution", madrid(3, 6, 11)),  # 1 d: Thu 9 + Fri 3
    ("enterprise", "P3", "first_response", madrid(3, 6, 11)),  # 1 d
    ("enterprise", "P3", "resolution", madrid(3, 10, 11)),  # 3 d
    ("enterprise", "P4", "first_response", madrid(3, 9, 11)),  # > 2 d
    ("enterprise", "P4", "resolution", madrid(3, 16, 11)),  # < 7 d
]


@pytest.mark.parametrize(("plan", "priority", "metric", "due"), SEED_TABLE)
def test_seed_response_and_resolution_times(
    plan: str, priority: str, metric: str, due: datetime
) -> None:
    """Each plan and incident type is due at the response and resolution time the seed promises."""
    sla = evaluate_ticket(CREATED, plan=plan, priority=priority)
    assert sla.metrics[metric].state is State.RUNNING
    assert sla.metrics[metric].due_at == due


@pytest.mark.parametrize(
    ("plan", "priority", "metric", "created", "due"),
    [
        # The worked example: Standard P2 response, 2 d = 14 h from Monday's opening.
        ("standard", "P2", "first_response", madrid(3, 2, 10), madrid(3, 3, 17)),
        # Plus P1 response "8 horas" is two whole Plus days.
        ("plus", "P1", "first_response", madrid(3, 2, 10), madrid(3, 3, 14)),
        ("plus", "P2", "first_response", madrid(3, 2, 10), madrid(3, 4, 14)),
        ("company", "P3", "resolution", madrid(3, 2, 9), madrid(3, 6, 18)),
        ("enterprise", "P4", "resolution", madrid(3, 2, 8), madrid(3, 10, 20)),
    ],
)
def test_business_days_from_opening_end_at_closing(
    plan: str, priority: str, metric: str, created: datetime, due: datetime
) -> None:
    """A ticket filed at opening time is due at closing time of its last business day."""
    sla = evaluate_ticket(created, plan=plan, priority=priority)
    assert sla.metrics[metric].due_at == due


def test_update_time_is_not_promised() -> None:
    """Athento promises response and resolution only: no update deadline is tracked."""
    sla = evaluate_ticket(CREATED, plan="standard", priority="P1")
    assert sla.metrics["update"].state is State.NOT_APPLICABLE
    assert {c.metric for c in sla.checkpoints} == {"first_response", "resolution"}


# -- each plan's hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "created", "due"),
    [
        # One hour before closing on Monday 2 March; the rest runs from the next opening.
        ("plus", madrid(3, 2, 13), madrid(3, 4, 13)),  # 8 h: Mon 1 + Tue 4 + Wed 3
        ("standard", madrid(3, 2, 16), madrid(3, 3, 15)),  # 6 h: Mon 1 + Tue 10:00+5
        ("company", madrid(3, 2, 17), madrid(3, 3, 12)),  # 4 h: Mon 1 + Tue 09:00+3
        ("enterprise", madrid(3, 2, 19), madrid(3, 3, 9)),  # 2 h: Mon 1 + Tue 08:00+1
    ],
)
def test_plan_hours_close_at_the_seed_hour(plan: str, created: datetime, due: datetime) -> None:
    """A Blocker filed an hour before the plan closes spends one hour today and resumes at opening."""
    sla = evaluate_ticket(created, plan=plan, priority="Blocker")
    assert sla.metrics["first_response"].due_at == due


@pytest.mark.parametrize(
    ("plan", "created", "due"),
    [
        # Tuesday 3 March, 07:00: before every plan opens.
        ("plus", madrid(3, 3, 7), madrid(3, 4, 14)),  # Tue 10–14 + Wed 10–14
        ("standard", madrid(3, 3, 7), madrid(3, 3, 16)),  # 10:00 + 6 h
        ("company", madrid(3, 3, 7), madrid(3, 3, 13)),  # 09:00 + 4 h
        ("enterprise", madrid(3, 3, 7), madrid(3, 3, 10)),  # 08:00 + 2 h
        # Saturday 7 March, 12:00: the clock starts on Monday 9 March.
        ("plus", madrid(3, 7, 12), madrid(3, 10, 14)),
        ("standard", madrid(3, 7, 12), madrid(3, 9, 16)),
        ("company", madrid(3, 7, 12), madrid(3, 9, 13)),
        ("enterprise", madrid(3, 7, 12), madrid(3, 9, 10)),
        # Friday 6 March, 20:30: after every plan closes, so again Monday 9 March.
        ("plus", madrid(3, 6, 20, 30), madrid(3, 10, 14)),
        ("standard", madrid(3, 6, 20, 30), madrid(3, 9, 16)),
        ("company", madrid(3, 6, 20, 30), madrid(3, 9, 13)),
        ("enterprise", madrid(3, 6, 20, 30), madrid(3, 9, 10)),
    ],
)
def test_ticket_outside_hours_starts_at_next_opening(
    plan: str, created: datetime, due: datetime
) -> None:
    """A Blocker filed at night or at the weekend starts counting when the plan next opens."""
    sla = evaluate_ticket(created, plan=plan, priority="Bloqueante")
    assert sla.metrics["first_response"].due_at == due


@pytest.mark.parametrize("customer_timezone", ["America/Mexico_City", "Asia/Tokyo", None])
def test_hours_are_madrid_hours_wherever_the_customer_is(customer_timezone: str | None) -> None:
    """Athento's hours are Spanish hours: the customer's own zone does not move the deadline."""
    zone_field = {"customer_timezone": customer_timezone} if customer_timezone else {}
    sla = evaluate_ticket(CREATED, plan="company", priority="P2", **zone_field)
    assert sla.metrics["first_response"].due_at == madrid(3, 6, 10)


def test_deadline_after_spring_forward_keeps_madrid_opening_hour() -> None:
    """Across the change to summer time the desk still opens at 10:00 on the Madrid clock."""
    # Standard P1, Fri 27 March 16:00 CET: 1 h on Friday, Mon 30 March 10:00 CEST + 5 h.
    sla = evaluate_ticket(madrid(3, 27, 16), plan="standard", priority="P1")
    assert sla.metrics["first_response"].due_at == madrid(3, 30, 15)


# -- Spain's national holidays -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "priority", "metric", "created", "due"),
    [
        # Tue 8 December (Immaculate Conception) is closed.
        ("standard", "P2", "first_response", madrid(12, 7, 10), madrid(12, 9, 17)),
        ("company", "P1", "first_response", madrid(12, 7, 16), madrid(12, 9, 11)),
        ("standard", "P1", "first_response", madrid(12, 8, 11), madrid(12, 9, 16)),
        # Fri 25 December (Christmas) is closed; Thu 24 is a working day.
        ("enterprise", "P2", "resolution", madrid(12, 24, 14), madrid(12, 28, 14)),
        ("plus", "P1", "first_response", madrid(12, 24, 12), madrid(12, 29, 12)),
        ("plus", "P2", "first_response", madrid(12, 23, 10), madrid(12, 28, 14)),
        # Fri 1 January 2027 (New Year) and Wed 6 January 2027 (Epiphany) are closed.
        ("enterprise", "P3", "first_response", madrid(12, 31, 14), madrid(1, 4, 14, year=2027)),
        (
            "company",
            "P3",
            "first_response",
            madrid(1, 5, 9, year=2027),
            madrid(1, 7, 18, year=2027),
        ),
        # Fri 3 April (Good Friday) is closed; Thu 2 and Mon 6 April are not national holidays.
        ("standard", "P2", "first_response", madrid(4, 2, 10), madrid(4, 6, 17)),
    ],
)
def test_spanish_national_holidays_are_closed(
    plan: str, priority: str, metric: str, created: datetime, due: datetime
) -> None:
    """No working time is counted on Spain's national holidays."""
    sla = evaluate_ticket(created, plan=plan, priority=priority)
    assert sla.metrics[metric].due_at == due


# -- incident types by the seed's words ------------------------------------------------------

# Standard plan, CREATED: response due per the seed table.
STANDARD_RESPONSE = {
    "P1": madrid(3, 5, 17),
    "P2": madrid(3, 9, 11),
    "P3": madrid(3, 10, 11),
    "P4": madrid(3, 11, 11),
}


@pytest.mark.parametrize(
    ("word", "priority"),
    [
        ("Bloqueante", "P1"),
        ("bloqueante", "P1"),
        ("BLOQUEANTE", "P1"),
        ("Blocker", "P1"),
        ("blocker", "P1"),
        ("Crítica", "P2"),
        ("critica", "P2"),
        ("CRÍTICA", "P2"),
        ("Critical", "P2"),
        ("critical", "P2"),
        ("Mayor", "P3"),
        ("mayor", "P3"),
        ("Major", "P3"),
        ("MAJOR", "P3"),
        ("Trivial", "P4"),
        ("trivial", "P4"),
        ("TRIVIAL", "P4"),
    ],
)
def test_incident_type_in_the_seed_words(word: str, priority: str) -> None:
    """The incident type may be written as the seed does, in Spanish or English, any case or accent."""
    sla = evaluate_ticket(CREATED, plan="standard", priority=word)
    assert sla.priority == priority
    assert sla.metrics["first_response"].due_at == STANDARD_RESPONSE[priority]


def test_priority_change_by_seed_word_moves_the_deadline() -> None:
    """Raising a Trivial ticket to Bloqueante puts it on the Blocker response time."""
    ticket = Ticket(CREATED, plan="standard", priority="Trivial")
    ticket.add("priority_changed", madrid(3, 5, 12), priority="bloqueante")
    sla = ticket.sla(preset("athento"), madrid(3, 5, 12))
    assert sla.priority == "P1"
    # The hour already elapsed counts: 6 h from 11:00 is still Thursday 17:00.
    assert sla.metrics["first_response"].due_at == madrid(3, 5, 17)


# -- response: a real acknowledgement, not an automatic one --------------------------------------


def test_automatic_acknowledgement_does_not_stop_response() -> None:
    """An automatic "we got your ticket" leaves the response clock running to its deadline."""
    ticket = Ticket(CREATED, plan="standard", priority="P1")
    ticket.reply(madrid(3, 5, 11, 1), automatic=True)
    sla = ticket.sla(preset("athento"), madrid(3, 5, 12))
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.RUNNING
    assert first_response.completed_at is None
    assert first_response.due_at == madrid(3, 5, 17)
    assert "first_response:breach" in {c.key for c in sla.checkpoints}


def test_automatic_acknowledgement_alone_breaches_response() -> None:
    """With only an automatic acknowledgement, the response is breached at its deadline."""
    ticket = Ticket(CREATED, plan="standard", priority="P1")
    ticket.reply(madrid(3, 5, 11, 1), automatic=True)
    sla = ticket.sla(preset("athento"), madrid(3, 6, 10))
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.BREACHED
    assert first_response.breached_at == madrid(3, 5, 17)


def test_real_reply_stops_response_but_not_resolution() -> None:
    """A human acknowledgement meets the response time; the resolution clock keeps running."""
    ticket = Ticket(CREATED, plan="standard", priority="P1")
    ticket.reply(madrid(3, 5, 11, 1), automatic=True)
    ticket.reply(madrid(3, 5, 12))
    sla = ticket.sla(preset("athento"), madrid(3, 5, 13))
    first_response = sla.metrics["first_response"]
    assert first_response.state is State.MET
    assert first_response.completed_at == madrid(3, 5, 12)
    assert first_response.due_at == madrid(3, 5, 17)
    resolution = sla.metrics["resolution"]
    assert resolution.state is State.RUNNING
    assert resolution.due_at == madrid(3, 6, 14)
    assert {c.metric for c in sla.checkpoints} == {"resolution"}


# -- waiting on the customer -------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "on_hold"])
def test_waiting_on_customer_pauses_the_clocks(status: str) -> None:
    """While the ticket waits on the customer neither response nor resolution time runs."""
    # Standard P1 from Thu 11:00; put on hold at 12:00 after 1 working hour.
    ticket = Ticket(CREATED, plan="standard", priority="P1").status(madrid(3, 5, 12), status)
    sla = ticket.sla(preset("athento"), madrid(3, 9, 10))
    for name, left in (("first_response", hours(5)), ("resolution", hours(9))):
        metric = sla.metrics[name]
        assert metric.state is State.PAUSED
        assert metric.due_at is None
        assert metric.remaining == left
    assert sla.checkpoints == ()


@pytest.mark.parametrize("status", ["pending", "on_hold"])
def test_clocks_resume_with_the_time_left(status: str) -> None:
    """When the customer answers, the clocks resume with the working time they had left."""
    # Paused Thu 12:00 to Mon 9 March 11:00. Response: 5 h left -> Mon 16:00. Resolution: 9 h
    # left -> Mon 11–17 (6 h) + Tue 10:00 + 3 h = Tue 13:00.
    ticket = Ticket(CREATED, plan="standard", priority="P1").status(madrid(3, 5, 12), status)
    ticket.status(madrid(3, 9, 11), "open")
    sla = ticket.sla(preset("athento"), madrid(3, 9, 11, 30))
    assert sla.metrics["first_response"].state is State.RUNNING
    assert sla.metrics["first_response"].due_at == madrid(3, 9, 16)
    assert sla.metrics["resolution"].state is State.RUNNING
    assert sla.metrics["resolution"].due_at == madrid(3, 10, 13)


def test_clocks_stop_from_the_very_instant_the_ticket_goes_pending() -> None:
    """Evaluated at the instant the ticket starts waiting on the customer, the clocks are held."""
    # Standard P1 from Thu 11:00, pending at 12:00, read at 12:00 exactly: 1 h used of each.
    ticket = Ticket(CREATED, plan="standard", priority="P1").status(madrid(3, 5, 12), "pending")
    sla = ticket.sla(preset("athento"), madrid(3, 5, 12))
    assert sla.status == "pending"
    for name, left in (("first_response", hours(5)), ("resolution", hours(9))):
        assert sla.metrics[name].state is State.PAUSED
        assert sla.metrics[name].due_at is None
        assert sla.metrics[name].remaining == left


def test_clocks_run_from_the_very_instant_the_ticket_reopens() -> None:
    """Evaluated at the instant the customer answers, the clocks already run with their deadlines."""
    # Same history as above, read at Mon 9 March 11:00 exactly, when the worker handles the event.
    ticket = Ticket(CREATED, plan="standard", priority="P1").status(madrid(3, 5, 12), "pending")
    ticket.status(madrid(3, 9, 11), "open")
    sla = ticket.sla(preset("athento"), madrid(3, 9, 11))
    assert sla.status == "open"
    assert sla.metrics["first_response"].state is State.RUNNING
    assert sla.metrics["first_response"].due_at == madrid(3, 9, 16)
    assert sla.metrics["resolution"].state is State.RUNNING
    assert sla.metrics["resolution"].due_at == madrid(3, 10, 13)


def test_pause_after_response_holds_resolution_only() -> None:
    """After the response is met, waiting on the customer holds only the resolution clock."""
    # Reply Thu 12:00, pending 13:00 (2 h of resolution used), open again Fri 6 March 12:00:
    # 8 h left -> Fri 12–17 (5 h) + Mon 9 March 10:00 + 3 h = 13:00.
    ticket = Ticket(CREATED, plan="standard", priority="P1").reply(madrid(3, 5, 12))
    ticket.status(madrid(3, 5, 13), "pending")
    paused = ticket.sla(preset("athento"), madrid(3, 5, 16))
    assert paused.metrics["first_response"].state is State.MET
    assert paused.metrics["resolution"].state is State.PAUSED
    assert paused.metrics["resolution"].remaining == hours(8)
    ticket.status(madrid(3, 6, 12), "open")
    resumed = ticket.sla(preset("athento"), madrid(3, 6, 12, 30))
    assert resumed.metrics["resolution"].due_at == madrid(3, 9, 13)


# -- warnings and breaches -----------------------------------------------------------------------


def test_warnings_at_75_and_90_percent_then_breach() -> None:
    """The lead hears at 75 % and 90 % of each target and at its breach, in working time."""
    # Standard P1 from Thu 11:00. Response 6 h: 4.5 h -> 15:30, 5.4 h -> 16:24, 17:00.
    # Resolution 10 h: 7.5 h -> Fri 11:30, 9 h -> Fri 13:00, Fri 14:00.
    sla = evaluate_ticket(CREATED, plan="standard", priority="P1")
    assert [(c.key, c.kind, c.due_at) for c in sla.checkpoints] == [
        ("first_response:warning:75", Kind.WARNING, madrid(3, 5, 15, 30)),
        ("first_response:warning:90", Kind.WARNING, madrid(3, 5, 16, 24)),
        ("first_response:breach", Kind.BREACH, madrid(3, 5, 17)),
        ("resolution:warning:75", Kind.WARNING, madrid(3, 6, 11, 30)),
        ("resolution:warning:90", Kind.WARNING, madrid(3, 6, 13)),
        ("resolution:breach", Kind.BREACH, madrid(3, 6, 14)),
    ]


def test_business_day_warnings_skip_the_weekend() -> None:
    """Warnings on a business-day target fall inside office hours, never at the weekend."""
    # Enterprise P4 response 2 d = 24 h from Thu 11:00: 18 h -> Fri 17:00; 21.6 h -> Mon 08:36;
    # 24 h -> Mon 11:00.
    sla = evaluate_ticket(CREATED, plan="enterprise", priority="Trivial")
    response = [(c.key, c.due_at) for c in sla.checkpoints if c.metric == "first_response"]
    assert response == [
        ("first_response:warning:75", madrid(3, 6, 17)),
        ("first_response:warning:90", madrid(3, 9, 8, 36)),
        ("first_response:breach", madrid(3, 9, 11)),
    ]


def test_unanswered_blocker_is_breached_at_its_deadline() -> None:
    """A Blocker nobody answered is reported breached at the instant its time ran out."""
    sla = evaluate_ticket(CREATED, now=madrid(3, 9, 10), plan="company", priority="Blocker")
    for name, due in (("first_response", madrid(3, 5, 15)), ("resolution", madrid(3, 5, 18))):
        assert sla.metrics[name].state is State.BREACHED
        assert sla.metrics[name].breached_at == due
    assert all(c.fired for c in sla.checkpoints)
