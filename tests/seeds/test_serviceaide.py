"""Seed 000 — Serviceaide support (deploy/policies/serviceaide.yaml).

Initial response: P1 Crítica 1 h worked 24x7 until downgraded; P2 Alta 2, P3 Media 4 and P4
Baja 8 working hours, support hours 24 h Monday to Friday. The preset puts the 24x5 week in
America/Los_Angeles, gives only first-response targets and warns at 75 % and 90 %.

Every expected instant below is worked out by hand from those numbers, as wall time in Los
Angeles (January 2026: Tue 6, Fri 9, Sat 10, Sun 11, Mon 12; the US switched to daylight time
on Sunday 8 March 2026 at 02:00).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import State
from scheduler.sla import Kind, TicketSla
from shared.policy import Policy
from tests.support import Ticket, hours, preset

LA = ZoneInfo("America/Los_Angeles")


def la(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA)


TUE_10 = la(1, 6, 10)
FRI_23 = la(1, 9, 23)
SAT_10 = la(1, 10, 10)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return preset("serviceaide")


def checkpoints(sla: TicketSla) -> dict[str, datetime]:
    return {c.key: c.due_at for c in sla.checkpoints}


# -- the table: initial response per priority -------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "created", "due"),
    [
        # A weekday: every hour is a support hour, whatever the priority.
        ("P1", TUE_10, la(1, 6, 11)),
        ("P2", TUE_10, la(1, 6, 12)),
        ("P3", TUE_10, la(1, 6, 14)),
        ("P4", TUE_10, la(1, 6, 18)),
        # Friday 23:00: one support hour is left on Friday, the rest waits for Monday 00:00.
        ("P1", FRI_23, la(1, 10, 0)),
        ("P2", FRI_23, la(1, 12, 1)),
        ("P3", FRI_23, la(1, 12, 3)),
        ("P4", FRI_23, la(1, 12, 7)),
        # Saturday 10:00: P1 is worked through the weekend, P2–P4 start Monday 00:00.
        ("P1", SAT_10, la(1, 10, 11)),
        ("P2", SAT_10, la(1, 12, 2)),
        ("P3", SAT_10, la(1, 12, 4)),
        ("P4", SAT_10, la(1, 12, 8)),
        # Sunday 23:30: P1 runs into Monday; P2–P4 start at Monday 00:00 all the same.
        ("P1", la(1, 11, 23, 30), la(1, 12, 0, 30)),
        ("P2", la(1, 11, 23, 30), la(1, 12, 2)),
        ("P3", la(1, 11, 23, 30), la(1, 12, 4)),
        ("P4", la(1, 11, 23, 30), la(1, 12, 8)),
        # Thursday 20:00: P4's 8 h are 4 h on Thursday and 4 h on Friday.
        ("P4", la(1, 8, 20), la(1, 9, 4)),
    ],
)
def test_initial_response_deadline_per_priority(
    policy: Policy, priority: str, created: datetime, due: datetime
) -> None:
    """Initial response is due in 1 h round the clock (P1) or 2/4/8 h of Mon–Fri time."""
    sla = Ticket(created, priority=priority).sla(policy, created + timedelta(minutes=1))
    first = sla.metrics["first_response"]
    assert sla.priority == priority
    assert first.state is State.RUNNING
    assert first.due_at == due
    assert checkpoints(sla)["first_response:breach"] == due


@pytest.mark.parametrize(
    ("priority", "due"),
    [
        ("P1", la(3, 7, 0)),  # 24x7: Friday 23:00 + 1 h
        ("P2", la(3, 9, 1)),  # Monday after the switch to daylight time, 01:00 PDT
        ("P3", la(3, 9, 3)),
        ("P4", la(3, 9, 7)),
    ],
)
def test_weekend_of_the_daylight_saving_switch(
    policy: Policy, priority: str, due: datetime
) -> None:
    """A ticket left over the weekend the clocks change is due at Monday's wall time."""
    created = la(3, 6, 23)
    sla = Ticket(created, priority=priority).sla(policy, created)
    assert sla.metrics["first_response"].due_at == due


def test_p1_through_the_spring_forward_hour_counts_real_time(policy: Policy) -> None:
    """A P1 opened 01:30 the night clocks jump forward is due 1 real hour later (03:30)."""
    created = la(3, 8, 1, 30)  # 01:30 PST = 09:30 UTC
    sla = Ticket(created, priority="P1").sla(policy, created)
    assert sla.metrics["first_response"].due_at == la(3, 8, 3, 30)  # 10:30 UTC


def test_p2_logged_on_saturday_is_answered_on_monday_not_over_the_weekend(policy: Policy) -> None:
    """A P2 logged on Saturday has used no support time by Sunday night and is not yet late."""
    sla = Ticket(SAT_10, priority="P2").sla(policy, la(1, 11, 23, 59))
    first = sla.metrics["first_response"]
    assert first.state is State.RUNNING
    assert first.elapsed == timedelta(0)
    assert first.due_at == la(1, 12, 2)


def test_p1_logged_on_saturday_is_late_on_saturday(policy: Policy) -> None:
    """A P1 not answered within the hour on a Saturday is breached that Saturday."""
    sla = Ticket(SAT_10, priority="P1").sla(policy, la(1, 10, 12))
    first = sla.metrics["first_response"]
    assert first.state is State.BREACHED
    assert first.breached_at == la(1, 10, 11)
    assert first.elapsed == hours(2)


@pytest.mark.parametrize(
    ("reply", "state"),
    [
        (la(1, 12, 0, 59), State.MET),
        (la(1, 12, 1, 1), State.BREACHED),
    ],
)
def test_answer_before_or_after_the_deadline(policy: Policy, reply: datetime, state: State) -> None:
    """An agent's public answer by the deadline meets the P2 target; one minute after misses it."""
    sla = Ticket(FRI_23, priority="P2").reply(reply).sla(policy, la(1, 12, 9))
    first = sla.metrics["first_response"]
    assert first.state is state
    assert first.completed_at == reply
    assert first.due_at == la(1, 12, 1)


def test_customer_time_zone_does_not_move_the_support_week(policy: Policy) -> None:
    """The 24x5 week is the desk's (Los Angeles), whatever zone the customer writes from."""
    sla = Ticket(FRI_23, priority="P2", customer_timezone="Europe/Madrid").sla(policy, FRI_23)
    assert sla.metrics["first_response"].due_at == la(1, 12, 1)


# -- the seed's words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "priority", "due"),
    [
        ("Crítica", "P1", la(1, 10, 0)),
        ("CRITICA", "P1", la(1, 10, 0)),
        ("crítica", "P1", la(1, 10, 0)),
        ("CRÍTICA", "P1", la(1, 10, 0)),
        ("Alta", "P2", la(1, 12, 1)),
        ("ALTA", "P2", la(1, 12, 1)),
        ("Media", "P3", la(1, 12, 3)),
        ("media", "P3", la(1, 12, 3)),
        ("Baja", "P4", la(1, 12, 7)),
        ("BAJA", "P4", la(1, 12, 7)),
    ],
)
def test_spanish_urgency_names_pick_the_priority(
    policy: Policy, word: str, priority: str, due: datetime
) -> None:
    """The seed's Spanish urgency, in any case and with or without accent, sets the deadline."""
    sla = Ticket(FRI_23, priority=word).sla(policy, FRI_23)
    assert sla.priority == priority
    assert sla.metrics["first_response"].due_at == due


def test_priority_change_by_spanish_name(policy: Policy) -> None:
    """Downgrading with the Spanish word ("media") works like downgrading to P3."""
    ticket = Ticket(SAT_10, priority="crítica").add(
        "priority_changed", la(1, 10, 10, 30), priority="media"
    )
    sla = ticket.sla(policy, la(1, 10, 12))
    assert sla.priority == "P3"
    assert sla.metrics["first_response"].due_at == la(1, 12, 3, 30)


# -- P1 downgraded -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "due"),
    [
        # 30 min used on Saturday; the rest (1h30 / 3h30 / 7h30) waits for Monday 00:00.
        ("P2", la(1, 12, 1, 30)),
        ("P3", la(1, 12, 3, 30)),
        ("P4", la(1, 12, 7, 30)),
    ],
)
def test_p1_downgraded_on_saturday_keeps_its_half_hour_and_waits_for_monday(
    policy: Policy, lower: str, due: datetime
) -> None:
    """A P1 downgraded after 30 min keeps them; the rest of its time runs on weekdays only."""
    ticket = Ticket(SAT_10, priority="P1").add(
        "priority_changed", la(1, 10, 10, 30), priority=lower
    )
    sla = ticket.sla(policy, la(1, 11, 12))
    first = sla.metrics["first_response"]
    assert sla.priority == lower
    assert first.state is State.RUNNING
    assert first.elapsed == timedelta(minutes=30)  # nothing more counted over the weekend
    assert first.due_at == due
    assert checkpoints(sla)["first_response:breach"] == due


def test_downgraded_p1_counts_weekday_time_again_on_monday(policy: Policy) -> None:
    """By Monday 01:00 a downgraded P1 has used its 30 Saturday minutes plus Monday's first hour."""
    ticket = Ticket(SAT_10, priority="P1").add("priority_changed", la(1, 10, 10, 30), priority="P3")
    first = ticket.sla(policy, la(1, 12, 1)).metrics["first_response"]
    assert first.elapsed == timedelta(hours=1, minutes=30)
    assert first.due_at == la(1, 12, 3, 30)


def test_p1_downgraded_on_a_weekday_keeps_running(policy: Policy) -> None:
    """A P1 downgraded to P3 on a Tuesday after 30 min is due 3h30 later the same day."""
    ticket = Ticket(TUE_10, priority="P1").add("priority_changed", la(1, 6, 10, 30), priority="P3")
    first = ticket.sla(policy, la(1, 6, 11)).metrics["first_response"]
    assert first.elapsed == timedelta(hours=1)
    assert first.due_at == la(1, 6, 14)


def test_p1_downgraded_on_friday_night_straddles_the_weekend(policy: Policy) -> None:
    """A P1 opened Friday 22:00, downgraded to P3 at 22:30: 1h30 more on Friday, 2 h on Monday."""
    ticket = Ticket(la(1, 9, 22), priority="P1").add(
        "priority_changed", la(1, 9, 22, 30), priority="P3"
    )
    first = ticket.sla(policy, la(1, 9, 22, 30)).metrics["first_response"]
    assert first.elapsed == timedelta(minutes=30)
    assert first.due_at == la(1, 12, 2)


# -- warnings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "created", "instants"),
    [
        # 75 % / 90 % of 1 h = 45 / 54 min, round the clock.
        ("P1", SAT_10, (la(1, 10, 10, 45), la(1, 10, 10, 54), la(1, 10, 11))),
        # 75 % / 90 % of 2 h = 90 / 108 min.
        ("P2", TUE_10, (la(1, 6, 11, 30), la(1, 6, 11, 48), la(1, 6, 12))),
        # 75 % / 90 % of 4 h = 3 h / 3h36.
        ("P3", TUE_10, (la(1, 6, 13), la(1, 6, 13, 36), la(1, 6, 14))),
        # 75 % / 90 % of 8 h = 6 h / 7h12; Friday 20:00 gives 4 h on Friday, the rest on Monday.
        ("P4", la(1, 9, 20), (la(1, 12, 2), la(1, 12, 3, 12), la(1, 12, 4))),
        # P2 from Friday 23:00: 1 h Friday, then 30 / 48 min into Monday.
        ("P2", FRI_23, (la(1, 12, 0, 30), la(1, 12, 0, 48), la(1, 12, 1))),
    ],
)
def test_warnings_at_75_and_90_percent(
    policy: Policy, priority: str, created: datetime, instants: tuple[datetime, datetime, datetime]
) -> None:
    """The desk is warned at 75 % and 90 % of the initial-response time, then at breach."""
    warn_75, warn_90, breach = instants
    sla = Ticket(created, priority=priority).sla(policy, created)
    assert checkpoints(sla) == {
        "first_response:warning:75": warn_75,
        "first_response:warning:90": warn_90,
        "first_response:breach": breach,
    }
    kinds = {c.key: (c.kind, c.percent, c.fired) for c in sla.checkpoints}
    assert kinds["first_response:warning:75"] == (Kind.WARNING, 75, False)
    assert kinds["first_response:warning:90"] == (Kind.WARNING, 90, False)
    assert kinds["first_response:breach"] == (Kind.BREACH, None, False)


def test_warnings_fire_as_time_passes(policy: Policy) -> None:
    """At 11:50 on a P2 opened at 10:00 both warnings have gone off and the breach has not."""
    sla = Ticket(TUE_10, priority="P2").sla(policy, la(1, 6, 11, 50))
    fired = {c.key: c.fired for c in sla.checkpoints}
    assert fired == {
        "first_response:warning:75": True,
        "first_response:warning:90": True,
        "first_response:breach": False,
    }
    assert sla.next_checkpoint is not None
    assert sla.next_checkpoint.key == "first_response:breach"


def test_an_answer_cancels_the_warnings_still_to_come(policy: Policy) -> None:
    """Answering a P3 at 13:10 keeps the 75 % warning given and drops the 90 % one and breach."""
    sla = Ticket(TUE_10, priority="P3").reply(la(1, 6, 13, 10)).sla(policy, la(1, 6, 15))
    assert checkpoints(sla) == {"first_response:warning:75": la(1, 6, 13)}
    assert sla.metrics["first_response"].state is State.MET


def test_warnings_follow_a_downgrade(policy: Policy) -> None:
    """A P1 downgraded to P3 is warned at 3 h and 3h36 of P3 time, counted on weekdays."""
    ticket = Ticket(SAT_10, priority="P1").add("priority_changed", la(1, 10, 10, 30), priority="P3")
    sla = ticket.sla(policy, la(1, 10, 10, 30))
    # 30 min on Saturday; 3 h is reached 2h30 into Monday, 3h36 at 3h06 into Monday.
    assert checkpoints(sla) == {
        "first_response:warning:75": la(1, 12, 2, 30),
        "first_response:warning:90": la(1, 12, 3, 6),
        "first_response:breach": la(1, 12, 3, 30),
    }


# -- what the seed does not promise ------------------------------------------------------------


@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4"])
def test_only_the_initial_response_is_promised(policy: Policy, priority: str) -> None:
    """The seed promises an initial response only: no update, resolution or escalation deadlines."""
    sla = Ticket(TUE_10, priority=priority).reply(la(1, 6, 10, 20)).sla(policy, la(1, 20, 10))
    assert sla.metrics["update"].state is State.NOT_APPLICABLE
    assert sla.metrics["resolution"].state is State.NOT_APPLICABLE
    assert sla.metrics["resolution"].due_at is None
    assert not [c for c in sla.checkpoints if c.kind is Kind.ESCALATION]
    assert sla.metrics["first_response"].state is State.MET


def test_pending_stops_the_initial_response_clock(policy: Policy) -> None:
    """While waiting on the customer (pending) the P2 clock stops, then resumes where it was."""
    ticket = Ticket(TUE_10, priority="P2").status(la(1, 6, 11), "pending")
    paused = ticket.sla(policy, la(1, 6, 15)).metrics["first_response"]
    assert paused.state is State.PAUSED
    assert paused.due_at is None
    assert paused.remaining == hours(1)
    resumed = (
        ticket.status(la(1, 6, 16), "open").sla(policy, la(1, 6, 16, 1)).metrics["first_response"]
    )
    assert resumed.state is State.RUNNING
    assert resumed.elapsed == timedelta(hours=1, minutes=1)
    assert resumed.due_at == la(1, 6, 17)


@pytest.mark.parametrize(
    ("status", "at", "state", "due"),
    [
        ("pending", la(1, 6, 11), State.PAUSED, None),
        ("open", la(1, 6, 16), State.RUNNING, la(1, 6, 17)),
    ],
)
def test_status_change_counts_at_the_very_instant_it_happens(
    policy: Policy, status: str, at: datetime, state: State, due: datetime | None
) -> None:
    """At the very second a ticket goes on or off hold, its clock already shows it."""
    ticket = Ticket(TUE_10, priority="P2")
    if status == "open":
        ticket.status(la(1, 6, 11), "pending")
    first = ticket.status(at, status).sla(policy, at).metrics["first_response"]
    assert first.state is state
    assert first.due_at == due
    assert first.elapsed == hours(1)


def test_downgrade_counts_at_the_very_instant_it_happens(policy: Policy) -> None:
    """At the very second a P1 is downgraded to P3, its clock already measures P3's 4 h."""
    at = la(1, 10, 10, 30)
    ticket = Ticket(SAT_10, priority="P1").add("priority_changed", at, priority="P3")
    first = ticket.sla(policy, at).metrics["first_response"]
    assert first.target == hours(4)
    assert first.due_at == la(1, 12, 3, 30)
