"""Seed 001 — "Soporte Completo", ITIL three-tier support (deploy/policies/soporte-completo.yaml).

| severity | first response | customer update | tier 2             | tier 3              |
| Crítico  | 30 min         | every 2 h       | 4 h after response | 8 h after response  |
| Alto     | 2 h            | every 4 h       | 8 h after response | 16 h after response |
| Normal   | 4 h            | every 1 day     | 2 days after resp. | 4 days after resp.  |

The preset runs every clock 24x7 (a day is 24 wall-clock hours), shows times in
America/Mexico_City (UTC-6 all year since 2022) and has no resolution target. Every expected
instant below is worked out by hand as Mexico City wall time (June 2026: Mon 1 … Sun 7).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import State
from scheduler.sla import Checkpoint, Kind, TicketSla
from shared.policy import Policy
from tests.support import Ticket, hours, preset

MX = ZoneInfo("America/Mexico_City")


def mx(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall time in Mexico City in June 2026."""
    return datetime(2026, 6, day, hour, minute, second, tzinfo=MX)


CREATED = mx(1, 9)  # Monday 09:00
ANSWERED = mx(1, 9, 10)  # the first public agent reply, ten minutes later


@pytest.fixture(scope="module")
def policy() -> Policy:
    return preset("soporte-completo")


def by_key(sla: TicketSla) -> dict[str, Checkpoint]:
    return {c.key: c for c in sla.checkpoints}


def escalations(sla: TicketSla) -> dict[str, Checkpoint]:
    return {c.key: c for c in sla.checkpoints if c.kind is Kind.ESCALATION}


def update_checkpoints(sla: TicketSla) -> dict[str, datetime]:
    return {c.key: c.due_at for c in sla.checkpoints if c.metric == "update"}


# -- first response ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "priority", "created", "due"),
    [
        ("Crítico", "P1", CREATED, mx(1, 9, 30)),
        ("Alto", "P2", CREATED, mx(1, 11)),
        ("Normal", "P3", CREATED, mx(1, 13)),
        # 24x7: Saturday night counts like any other time.
        ("Crítico", "P1", mx(6, 23, 45), mx(7, 0, 15)),
        ("Alto", "P2", mx(6, 23), mx(7, 1)),
        ("Normal", "P3", mx(6, 22), mx(7, 2)),
    ],
)
def test_first_response_deadline_per_severity(
    policy: Policy, severity: str, priority: str, created: datetime, due: datetime
) -> None:
    """Each severity must get its first answer within 30 min / 2 h / 4 h, any day of the week."""
    sla = Ticket(created, priority=severity).sla(policy, created)
    first = sla.metrics["first_response"]
    assert sla.priority == priority
    assert first.state is State.RUNNING
    assert first.due_at == due
    assert by_key(sla)["first_response:breach"].due_at == due
    assert first.tz.key == "America/Mexico_City"


@pytest.mark.parametrize(
    ("word", "priority"),
    [("CRITICO", "P1"), ("crítico", "P1"), ("CRÍTICO", "P1"), ("alto", "P2"), ("NORMAL", "P3")],
)
def test_severity_words_ignore_case_and_accents(policy: Policy, word: str, priority: str) -> None:
    """The seed's severity names work however they are typed (CRITICO, crítico, alto, NORMAL)."""
    assert Ticket(CREATED, priority=word).sla(policy, CREATED).priority == priority


@pytest.mark.parametrize(
    ("severity", "warn_75", "warn_90"),
    [
        ("P1", mx(1, 9, 22, 30), mx(1, 9, 27)),  # 22.5 / 27 min of 30
        ("P2", mx(1, 10, 30), mx(1, 10, 48)),  # 90 / 108 min of 2 h
        ("P3", mx(1, 12), mx(1, 12, 36)),  # 3 h / 3h36 of 4 h
    ],
)
def test_first_response_warnings(
    policy: Policy, severity: str, warn_75: datetime, warn_90: datetime
) -> None:
    """The desk is warned when 75 % and 90 % of the first-response time is gone."""
    keys = by_key(Ticket(CREATED, priority=severity).sla(policy, CREATED))
    assert keys["first_response:warning:75"].due_at == warn_75
    assert keys["first_response:warning:90"].due_at == warn_90


def test_answer_in_time_meets_first_response(policy: Policy) -> None:
    """A public agent reply within 30 min meets a Crítico ticket's first response."""
    sla = Ticket(CREATED, priority="P1").reply(mx(1, 9, 25)).sla(policy, mx(1, 10))
    first = sla.metrics["first_response"]
    assert first.state is State.MET
    assert first.completed_at == mx(1, 9, 25)
    assert first.due_at == mx(1, 9, 30)
    assert "first_response:breach" not in by_key(sla)


@pytest.mark.parametrize(
    "not_an_answer",
    [
        pytest.param({"public": False}, id="private-note"),
        pytest.param({"automatic": True}, id="automatic-reply"),
        pytest.param({"public": False, "automatic": True}, id="automatic-private"),
    ],
)
def test_private_note_or_automatic_reply_is_not_a_first_response(
    policy: Policy, not_an_answer: dict[str, bool]
) -> None:
    """A private note or an automatic acknowledgement is not the first answer to a ticket."""
    ticket = Ticket(CREATED, priority="P2").reply(mx(1, 9, 30), **not_an_answer)
    sla = ticket.sla(policy, mx(1, 12))
    first = sla.metrics["first_response"]
    assert first.state is State.BREACHED
    assert first.breached_at == mx(1, 11)
    assert first.completed_at is None
    # Nothing is measured from a response that has not happened.
    assert sla.metrics["update"].state is State.NOT_APPLICABLE
    assert escalations(sla) == {}


def test_real_answer_after_a_private_note_is_the_first_response(policy: Policy) -> None:
    """After a private note, the first public human reply is the one that counts, late or not."""
    ticket = Ticket(CREATED, priority="P2").reply(mx(1, 9, 30), public=False).reply(mx(1, 12, 30))
    sla = ticket.sla(policy, mx(1, 13))
    first = sla.metrics["first_response"]
    assert first.state is State.BREACHED
    assert first.completed_at == mx(1, 12, 30)
    # Escalations are measured from that reply: 12:30 + 8 h and + 16 h.
    assert {k: c.due_at for k, c in escalations(sla).items()} == {
        "escalation:tier2": mx(1, 20, 30),
        "escalation:tier3": mx(2, 4, 30),
    }


# -- customer updates --------------------------------------------------------------------------


CADENCE = {"P1": hours(2), "P2": hours(4), "P3": hours(24)}


@pytest.mark.parametrize(
    ("severity", "due"),
    [
        ("P1", mx(1, 11, 10)),  # every 2 h
        ("P2", mx(1, 13, 10)),  # every 4 h
        ("P3", mx(2, 9, 10)),  # every day: Tuesday 09:10
    ],
)
def test_customer_update_due_after_each_reply(policy: Policy, severity: str, due: datetime) -> None:
    """After the first answer the customer must hear again every 2 h / 4 h / 1 day, by severity."""
    sla = Ticket(CREATED, priority=severity).reply(ANSWERED).sla(policy, ANSWERED)
    update = sla.metrics["update"]
    assert update.state is State.RUNNING
    assert update.due_at == due
    assert by_key(sla)["update#1:breach"].due_at == due


@pytest.mark.parametrize(
    ("severity", "second_reply", "due"),
    [
        ("P1", mx(1, 10, 10), mx(1, 12, 10)),
        ("P2", mx(1, 11, 10), mx(1, 15, 10)),
        ("P3", mx(1, 21, 10), mx(2, 21, 10)),
    ],
)
def test_each_public_reply_restarts_the_update_clock(
    policy: Policy, severity: str, second_reply: datetime, due: datetime
) -> None:
    """A public reply mid-cadence resets it: the next update is due a full cadence later."""
    ticket = Ticket(CREATED, priority=severity).reply(ANSWERED).reply(second_reply)
    sla = ticket.sla(policy, second_reply)
    update = sla.metrics["update"]
    assert update.state is State.RUNNING
    assert update.due_at == due
    keys = update_checkpoints(sla)
    assert keys["update#2:breach"] == due
    assert "update#1:breach" not in keys  # the earlier deadline is gone


@pytest.mark.parametrize(
    ("severity", "warn_75", "warn_90"),
    [
        ("P1", mx(1, 10, 40), mx(1, 10, 58)),  # 90 / 108 min after 09:10
        ("P2", mx(1, 12, 10), mx(1, 12, 46)),  # 3 h / 3h36 after 09:10
        ("P3", mx(2, 3, 10), mx(2, 6, 46)),  # 18 h / 21h36 after 09:10
    ],
)
def test_update_warnings(
    policy: Policy, severity: str, warn_75: datetime, warn_90: datetime
) -> None:
    """The desk is warned at 75 % and 90 % of the update cadence."""
    keys = update_checkpoints(
        Ticket(CREATED, priority=severity).reply(ANSWERED).sla(policy, ANSWERED)
    )
    assert keys["update#1:warning:75"] == warn_75
    assert keys["update#1:warning:90"] == warn_90


@pytest.mark.parametrize("severity", ["P1", "P2", "P3"])
def test_silence_past_the_cadence_breaches_the_update(policy: Policy, severity: str) -> None:
    """No word to the customer for longer than the cadence breaches at reply + cadence."""
    due = ANSWERED + CADENCE[severity]
    sla = Ticket(CREATED, priority=severity).reply(ANSWERED).sla(policy, due + timedelta(minutes=1))
    update = sla.metrics["update"]
    assert update.state is State.BREACHED
    assert update.breached_at == due
    assert by_key(sla)["update#1:breach"].fired


@pytest.mark.parametrize(
    "not_an_update",
    [
        pytest.param({"public": False}, id="private-note"),
        pytest.param({"automatic": True}, id="automatic-reply"),
    ],
)
def test_private_note_or_automatic_reply_does_not_count_as_an_update(
    policy: Policy, not_an_update: dict[str, bool]
) -> None:
    """A private note or automatic message does not count as the customer's update."""
    ticket = Ticket(CREATED, priority="P1").reply(ANSWERED).reply(mx(1, 10, 10), **not_an_update)
    update = ticket.sla(policy, mx(1, 10, 30)).metrics["update"]
    assert update.due_at == mx(1, 11, 10)


def test_customer_reply_does_not_count_as_an_update(policy: Policy) -> None:
    """The customer writing back does not give the desk more time to update them."""
    ticket = Ticket(CREATED, priority="P1").reply(ANSWERED).add("customer_replied", mx(1, 10, 10))
    assert ticket.sla(policy, mx(1, 10, 30)).metrics["update"].due_at == mx(1, 11, 10)


@pytest.mark.parametrize("severity", ["P1", "P2", "P3"])
def test_resolution_stops_the_update_clock(policy: Policy, severity: str) -> None:
    """Once the ticket is resolved no further customer update is owed."""
    resolved = ANSWERED + CADENCE[severity] / 2
    ticket = Ticket(CREATED, priority=severity).reply(ANSWERED).add("resolved", resolved)
    sla = ticket.sla(policy, ANSWERED + 10 * CADENCE[severity])
    update = sla.metrics["update"]
    assert update.state is State.MET
    assert update.completed_at == resolved
    assert "update#1:breach" not in update_checkpoints(sla)
    assert sla.next_checkpoint is None


# -- escalations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "tier2", "tier3"),
    [
        ("P1", mx(1, 13, 10), mx(1, 17, 10)),  # 4 h / 8 h after 09:10
        ("P2", mx(1, 17, 10), mx(2, 1, 10)),  # 8 h / 16 h after 09:10
        ("P3", mx(3, 9, 10), mx(5, 9, 10)),  # 2 / 4 days after Monday 09:10
    ],
)
def test_escalation_to_tier_2_and_3_from_the_initial_response(
    policy: Policy, severity: str, tier2: datetime, tier3: datetime
) -> None:
    """An open ticket escalates to tier 2 and tier 3 the seed's hours after its initial response."""
    sla = Ticket(CREATED, priority=severity).reply(ANSWERED).sla(policy, ANSWERED)
    got = escalations(sla)
    assert set(got) == {"escalation:tier2", "escalation:tier3"}
    assert (got["escalation:tier2"].tier, got["escalation:tier2"].due_at) == (2, tier2)
    assert (got["escalation:tier3"].tier, got["escalation:tier3"].due_at) == (3, tier3)
    assert not any(c.fired for c in got.values())


@pytest.mark.parametrize(
    ("severity", "answered", "tier2", "tier3"),
    [
        # Answered late (an hour after creation): the escalation clock starts at the answer.
        ("P1", mx(1, 10), mx(1, 14), mx(1, 18)),
        ("P2", mx(1, 10), mx(1, 18), mx(2, 2)),
        ("P3", mx(1, 10), mx(3, 10), mx(5, 10)),
    ],
)
def test_escalation_counts_from_the_answer_not_from_creation(
    policy: Policy, severity: str, answered: datetime, tier2: datetime, tier3: datetime
) -> None:
    """A later first answer moves the escalation deadlines with it."""
    sla = Ticket(CREATED, priority=severity).reply(answered).sla(policy, answered)
    got = {k: c.due_at for k, c in escalations(sla).items()}
    assert got == {"escalation:tier2": tier2, "escalation:tier3": tier3}


def test_escalations_fire_as_time_passes(policy: Policy) -> None:
    """Just after 4 h from the answer a Crítico ticket is at tier 2, not yet at tier 3."""
    ticket = Ticket(CREATED, priority="P1").reply(ANSWERED)
    got = escalations(ticket.sla(policy, mx(1, 13, 11)))
    assert got["escalation:tier2"].fired
    assert not got["escalation:tier3"].fired
    got = escalations(ticket.sla(policy, mx(1, 17, 10)))
    assert got["escalation:tier2"].fired
    assert got["escalation:tier3"].fired


@pytest.mark.parametrize("severity", ["P1", "P2", "P3"])
def test_no_escalation_before_a_first_response(policy: Policy, severity: str) -> None:
    """Without an initial response there is nothing to count escalations from, even days later."""
    sla = Ticket(CREATED, priority=severity).sla(policy, mx(7, 9))
    assert escalations(sla) == {}
    assert sla.metrics["first_response"].state is State.BREACHED


@pytest.mark.parametrize("severity", ["P1", "P2", "P3"])
def test_no_escalation_once_resolved(policy: Policy, severity: str) -> None:
    """A ticket resolved an hour after its answer is never escalated."""
    ticket = Ticket(CREATED, priority=severity).reply(ANSWERED).add("resolved", mx(1, 10, 10))
    sla = ticket.sla(policy, mx(10, 9))
    assert escalations(sla) == {}
    assert sla.next_checkpoint is None


def test_resolution_between_tiers_cancels_the_pending_escalation(policy: Policy) -> None:
    """A Crítico ticket resolved 5 h after its answer went to tier 2 but never to tier 3."""
    ticket = Ticket(CREATED, priority="P1").reply(ANSWERED).add("resolved", mx(1, 14, 10))
    got = escalations(ticket.sla(policy, mx(2, 9)))
    assert "escalation:tier3" not in got
    assert not [c for c in got.values() if not c.fired]
    assert got["escalation:tier2"].due_at == mx(1, 13, 10)
    assert got["escalation:tier2"].fired


def test_ticket_already_with_tier_2_is_not_escalated_to_tier_2_again(policy: Policy) -> None:
    """A ticket given to tier 2 by hand is not escalated to tier 2 again, but still to tier 3."""
    ticket = Ticket(CREATED, priority="P1").reply(ANSWERED).add("assigned", mx(1, 10), tier=2)
    got = {k: c.due_at for k, c in escalations(ticket.sla(policy, mx(1, 10))).items()}
    assert got == {"escalation:tier3": mx(1, 17, 10)}


# -- pausing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("waiting", ["pending", "on_hold"])
def test_waiting_on_the_customer_stops_the_first_response_clock(
    policy: Policy, waiting: str
) -> None:
    """An Alto ticket put on hold 1 h in, for 2 h, is due 2 h later than it would have been."""
    ticket = Ticket(CREATED, priority="P2").status(mx(1, 10), waiting)
    paused = ticket.sla(policy, mx(1, 11)).metrics["first_response"]
    assert paused.state is State.PAUSED
    assert paused.due_at is None
    assert paused.remaining == hours(1)
    assert paused.elapsed == hours(1)
    running = ticket.status(mx(1, 12), "open").sla(policy, mx(1, 12, 30)).metrics["first_response"]
    assert running.state is State.RUNNING
    assert running.due_at == mx(1, 13)


def test_pending_stops_the_update_clock(policy: Policy) -> None:
    """A Crítico ticket pending for 1 h owes its next update 1 h later (12:10, not 11:10)."""
    ticket = Ticket(CREATED, priority="P1").reply(ANSWERED).status(mx(1, 10, 10), "pending")
    paused = ticket.sla(policy, mx(1, 10, 40)).metrics["update"]
    assert paused.state is State.PAUSED
    assert paused.remaining == hours(1)
    update = ticket.status(mx(1, 11, 10), "open").sla(policy, mx(1, 11, 20)).metrics["update"]
    assert update.state is State.RUNNING
    assert update.due_at == mx(1, 12, 10)


def test_pending_stops_the_escalation_clock(policy: Policy) -> None:
    """Time waiting on the customer does not count toward escalation: 1 h pending, 1 h later."""
    ticket = (
        Ticket(CREATED, priority="P1")
        .reply(ANSWERED)
        .status(mx(1, 10, 10), "pending")
        .status(mx(1, 11, 10), "open")
    )
    got = {k: c.due_at for k, c in escalations(ticket.sla(policy, mx(1, 11, 20))).items()}
    assert got == {"escalation:tier2": mx(1, 14, 10), "escalation:tier3": mx(1, 18, 10)}


def test_no_resolution_deadline(policy: Policy) -> None:
    """The seed promises no resolution time, so none is measured."""
    sla = Ticket(CREATED, priority="P1").reply(ANSWERED).sla(policy, mx(3, 9))
    assert sla.metrics["resolution"].state is State.NOT_APPLICABLE
    assert not [c for c in sla.checkpoints if c.metric == "resolution"]
