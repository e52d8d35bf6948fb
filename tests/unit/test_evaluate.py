"""The SLA core on hand-built tickets, against the CONTRACTS.md example policy.

The example's `standard` plan works Europe/Madrid office hours (Mon–Thu 08–17, Fri 08–14 and
15–18, Spain's holidays); P1 targets: first response 1 h, update every 2 h, resolution 8 h, tier
2 at 4 h and tier 3 at 8 h after the first response, warnings at 75 % and 90 %.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.clock import State
from scheduler.evaluate import evaluate
from shared.errors import EvaluationError, TicketNotCreated
from shared.events import Event
from shared.policy import Policy
from shared.policy_file import load_policy
from tests.support import ROOT, Ticket, event, hours, preset

MADRID = ZoneInfo("Europe/Madrid")
MON = datetime(2026, 3, 2, 9, 0, tzinfo=MADRID)  # Monday 2 March 2026, 09:00


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "tests" / "fixtures" / "contract-example.yaml")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=MADRID)


def test_first_response_met_reports_the_deadline_it_was_met_against(policy: Policy) -> None:
    """A reply within the hour is met; the report keeps the deadline and the time used."""
    sla = Ticket(MON, priority="P1").reply(at(2, 9, 40)).sla(policy, at(2, 12))
    fr = sla.metrics["first_response"]
    assert (fr.state, fr.due_at, fr.completed_at) == (State.MET, at(2, 10), at(2, 9, 40))
    assert fr.elapsed == timedelta(minutes=40)


def test_first_response_breaches_at_the_deadline_and_fires_its_checkpoints(policy: Policy) -> None:
    """No reply: the breach is at 10:00, with warnings at 75 % (09:45) and 90 % (09:54)."""
    sla = Ticket(MON, priority="P1").sla(policy, at(2, 10, 30))
    fr = sla.metrics["first_response"]
    assert (fr.state, fr.breached_at) == (State.BREACHED, at(2, 10))
    marks = {c.key: (c.due_at, c.fired) for c in sla.checkpoints if c.metric == "first_response"}
    assert marks == {
        "first_response:warning:75": (at(2, 9, 45), True),
        "first_response:warning:90": (at(2, 9, 54), True),
        "first_response:breach": (at(2, 10), True),
    }


def test_reply_exactly_at_the_deadline_is_on_time(policy: Policy) -> None:
    """A reply at the very second of the deadline meets it, and no breach is recorded."""
    sla = Ticket(MON, priority="P1").reply(at(2, 10)).sla(policy, at(2, 11))
    assert sla.metrics["first_response"].state is State.MET
    assert "first_response:breach" not in {c.key for c in sla.checkpoints}


def test_deadline_used_up_at_closing_is_the_closing_instant(policy: Policy) -> None:
    """Created Thursday 16:00 with one working hour: due Thursday 17:00, not Monday 08:00."""
    sla = Ticket(at(5, 16), priority="P1").sla(policy, at(5, 16, 30))
    assert sla.metrics["first_response"].due_at == at(5, 17)


def test_created_outside_hours_starts_at_the_next_opening(policy: Policy) -> None:
    """A ticket opened Saturday is due one working hour after Monday's 08:00 opening."""
    sla = Ticket(at(7, 11), priority="P1").sla(policy, at(7, 12))
    fr = sla.metrics["first_response"]
    assert (fr.state, fr.due_at, fr.elapsed) == (State.RUNNING, at(9, 9), timedelta(0))


def test_lunch_break_on_friday_is_not_working_time(policy: Policy) -> None:
    """Friday 13:30 + 1 h of work: 30 min before the 14:00–15:00 break, 30 after: 15:30."""
    sla = Ticket(at(6, 13, 30), priority="P1").sla(policy, at(6, 13, 31))
    assert sla.metrics["first_response"].due_at == at(6, 15, 30)


def test_private_notes_and_automatic_replies_are_not_responses(policy: Policy) -> None:
    """An internal note and an auto-acknowledgement leave first response running."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 5), public=False)
    ticket.reply(at(2, 9, 6), automatic=True)
    fr = ticket.sla(policy, at(2, 9, 30)).metrics["first_response"]
    assert (fr.state, fr.completed_at) == (State.RUNNING, None)


def test_pending_pauses_every_clock_and_reports_time_left(policy: Policy) -> None:
    """While pending, clocks stop: no due instant, the remaining time is reported instead."""
    ticket = Ticket(MON, priority="P1").status(at(2, 9, 20), "pending")
    fr = ticket.sla(policy, at(2, 11)).metrics["first_response"]
    assert (fr.state, fr.due_at, fr.remaining) == (State.PAUSED, None, timedelta(minutes=40))


def test_resumed_clock_is_due_later_by_the_paused_time(policy: Policy) -> None:
    """Pending 09:20–11:00 moves the first-response deadline from 10:00 to 11:40."""
    ticket = Ticket(MON, priority="P1").status(at(2, 9, 20), "pending")
    ticket.status(at(2, 11), "open")
    fr = ticket.sla(policy, at(2, 11, 5)).metrics["first_response"]
    assert (fr.state, fr.due_at) == (State.RUNNING, at(2, 11, 40))


def test_warnings_fired_before_a_pause_stay_fired_and_future_ones_disarm(policy: Policy) -> None:
    """Paused at 09:50: the 75 % warning (09:45) fired; the 90 % and breach are not armed."""
    ticket = Ticket(MON, priority="P1").status(at(2, 9, 50), "on_hold")
    keys = {c.key: c.fired for c in ticket.sla(policy, at(2, 12)).checkpoints}
    assert keys.get("first_response:warning:75") is True
    assert "first_response:warning:90" not in keys
    assert "first_response:breach" not in keys


def test_priority_raise_keeps_elapsed_time_and_retargets(policy: Policy) -> None:
    """P4 (no target) → P1 at 09:30: the hour counts from creation, due 10:00."""
    ticket = Ticket(MON, priority="P4").add("priority_changed", at(2, 9, 30), priority="urgent")
    sla = ticket.sla(policy, at(2, 9, 40))
    assert sla.priority == "P1"
    assert sla.metrics["first_response"].due_at == at(2, 10)


def test_priority_change_past_the_new_target_breaches_at_the_change() -> None:
    """Normal for 1 h, then raised to Crítico (30 min): breached at the moment of the raise."""
    start = datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("America/Mexico_City"))
    ticket = Ticket(start, priority="Normal").add(
        "priority_changed", start + hours(1), priority="Crítico"
    )
    fr = ticket.sla(preset("soporte-completo"), start + hours(2)).metrics["first_response"]
    assert (fr.state, fr.breached_at) == (State.BREACHED, start + hours(1))


def test_update_cadence_resets_on_each_reply_and_stops_at_resolution(policy: Policy) -> None:
    """Every public reply restarts the 2-hour update clock; resolving ends it."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 30)).reply(at(2, 11))
    update = ticket.sla(policy, at(2, 12)).metrics["update"]
    assert (update.state, update.due_at) == (State.RUNNING, at(2, 13))
    ticket.add("resolved", at(2, 12, 30))
    update = ticket.sla(policy, at(2, 16)).metrics["update"]
    assert (update.state, update.completed_at) == (State.MET, at(2, 12, 30))


def test_update_breaches_in_one_cycle_are_kept_after_the_next_reply(policy: Policy) -> None:
    """A late update stays on record (fired breach) after the agent finally replies."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 10)).reply(at(2, 12))
    sla = ticket.sla(policy, at(2, 12, 5))
    fired = {c.key: c.due_at for c in sla.checkpoints if c.fired}
    assert fired["update#1:breach"] == at(2, 11, 10)
    assert sla.metrics["update"].state is State.RUNNING


def test_a_missed_update_is_reminded_every_interval_until_the_agent_replies(policy: Policy) -> None:
    """Update due 11:30 (2 h cadence): reminded at 13:30, 15:30 and, in working time, Tue 08:30."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 30))
    sla = ticket.sla(policy, at(2, 14))
    reminders = {c.key: (c.due_at, c.fired) for c in sla.checkpoints if c.kind.value == "reminder"}
    assert reminders == {
        "update#1:reminder:1": (at(2, 13, 30), True),
        "update#1:reminder:2": (at(2, 15, 30), False),
        "update#1:reminder:3": (at(3, 8, 30), False),
    }
    ticket.reply(at(2, 14, 30))
    after = ticket.sla(policy, at(2, 16))
    assert [
        c.key
        for c in after.checkpoints
        if c.kind.value == "reminder" and c.key.startswith("update#1")
    ] == ["update#1:reminder:1"]  # the one that fired before the reply stays on record


def test_reopening_resumes_resolution_with_the_time_already_used(policy: Policy) -> None:
    """Resolved after 2 h, reopened next day: 6 h remain of the 8 h resolution target."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 30)).add("resolved", at(2, 11))
    ticket.add("reopened", at(3, 8))
    res = ticket.sla(policy, at(3, 8, 30)).metrics["resolution"]
    assert (res.state, res.elapsed, res.due_at) == (State.RUNNING, hours(2.5), at(3, 14))


def test_escalations_measured_from_first_response(policy: Policy) -> None:
    """Tier 2 at 4 h and tier 3 at 8 h of working time after the 09:30 first response."""
    sla = Ticket(MON, priority="P1").reply(at(2, 9, 30)).sla(policy, at(2, 10))
    due = {c.tier: c.due_at for c in sla.checkpoints if c.kind.value == "escalation"}
    assert due == {2: at(2, 13, 30), 3: at(3, 8, 30)}


def test_no_escalation_before_a_first_response_or_after_resolution(policy: Policy) -> None:
    """Escalations wait for a first response and are cancelled when the ticket is solved."""
    unanswered = Ticket(MON, priority="P1").sla(policy, at(2, 9, 30))
    assert not [c for c in unanswered.checkpoints if c.kind.value == "escalation"]
    solved = Ticket(MON, priority="P1").reply(at(2, 9, 30)).add("resolved", at(2, 10))
    assert not [
        c for c in solved.sla(policy, at(3, 12)).checkpoints if c.kind.value == "escalation"
    ]


def test_manual_assignment_to_tier_two_cancels_that_escalation(policy: Policy) -> None:
    """Assigned to tier 2 before its deadline: no tier-2 escalation checkpoint, tier 3 stays."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 30)).add("assigned", at(2, 10), tier=2)
    tiers = {c.tier for c in ticket.sla(policy, at(2, 10, 30)).checkpoints if c.tier}
    assert tiers == {3}


def test_escalation_request_is_an_immediate_checkpoint(policy: Policy) -> None:
    """escalation_requested escalates at once to the next tier."""
    ticket = Ticket(MON, priority="P1").add("escalation_requested", at(2, 9, 10))
    esc = [c for c in ticket.sla(policy, at(2, 9, 10)).checkpoints if c.kind.value == "escalation"]
    assert [(c.tier, c.due_at, c.fired) for c in esc] == [(2, at(2, 9, 10), True)]


def test_events_after_now_have_not_happened_yet(policy: Policy) -> None:
    """Evaluating as of 09:30 ignores a reply stamped 09:40."""
    ticket = Ticket(MON, priority="P1").reply(at(2, 9, 40))
    assert ticket.sla(policy, at(2, 9, 30)).metrics["first_response"].state is State.RUNNING


def test_matrix_and_default_priority() -> None:
    """Urgency × impact gives the priority when none is sent (seed 003)."""
    sla = Ticket(MON, urgency="medium", impact="high").sla(preset("zmanda"), at(2, 10))
    assert sla.priority == "P2"


def test_ticket_without_created_is_not_evaluated(policy: Policy) -> None:
    """Events that arrive before the ticket's created event wait for it."""
    with pytest.raises(TicketNotCreated):
        evaluate(policy, [event("agent_replied", MON)], at(2, 10))


def test_unknown_priority_names_the_event(policy: Policy) -> None:
    """A priority the policy does not know is refused with the event id and the known names."""
    with pytest.raises(EvaluationError, match=r"unknown priority 'P9' \(known: P1, P2, P3, P4\)"):
        Ticket(MON, priority="P9").sla(policy, at(2, 10))


# -- any order, any duplication: the same answer -----------------------------------------

_KINDS = st.sampled_from(
    [
        {"type": "agent_replied"},
        {"type": "agent_replied", "public": False},
        {"type": "agent_replied", "automatic": True},
        {"type": "customer_replied"},
        {"type": "status_changed", "status": "pending"},
        {"type": "status_changed", "status": "open"},
        {"type": "status_changed", "status": "on_hold"},
        {"type": "priority_changed", "priority": "P1"},
        {"type": "priority_changed", "priority": "P3"},
        {"type": "resolved"},
        {"type": "reopened"},
        {"type": "assigned", "tier": 2},
        {"type": "escalation_requested"},
        # the context the targets of multi-team choose by: no state change, maybe a new target
        {"type": "updated", "tags_added": ["vip"]},
        {"type": "updated", "tags_removed": ["vip"]},
        {"type": "updated", "tags": ["other", "vip"]},
        {"type": "assigned", "group": "Billing"},
        {"type": "assigned", "group": "Technical", "tier": 2},
        {"type": "updated", "ticket_type": "incident"},
        {"type": "updated", "ticket_type": "question", "tags_added": ["other"]},
    ]
)
_CREATED_CONTEXT = st.sampled_from(
    [{}, {"group": "Billing"}, {"group": "Technical", "ticket_type": "incident", "tags": ["vip"]}]
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], list[Event], datetime]:
    start = MON + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    priority = draw(st.sampled_from(["P1", "P2", "P3"]))
    events = [event("created", start, priority=priority, **draw(_CREATED_CONTEXT))]
    for fields in draw(st.lists(_KINDS, max_size=12)):
        # minute offsets collide often on purpose: same-instant events must fold the same way
        offset = timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)) // 30 * 30)
        events.append(
            event(
                fields["type"], start + offset, **{k: v for k, v in fields.items() if k != "type"}
            )
        )
    shuffled = draw(st.permutations(events))
    repeated = shuffled + draw(st.lists(st.sampled_from(events), max_size=5))
    now = start + timedelta(minutes=draw(st.integers(0, 5 * 24 * 60)))
    return events, repeated, now


@pytest.mark.parametrize(
    "name", ["soporte-completo", "athento", "wati-business-plus", "multi-team"]
)
@settings(max_examples=150, deadline=None)
@given(history=histories())
def test_any_order_or_repetition_of_the_same_events_gives_the_same_result(
    name: str, history: tuple[list[Event], list[Event], datetime]
) -> None:
    """Shuffled and duplicated webhooks produce exactly the same SLA state and checkpoints,
    also where tags, groups and types move a ticket from target to target (multi-team)."""
    original, scrambled, now = history
    policy = preset(name)
    assert evaluate(policy, scrambled, now).to_json() == evaluate(policy, original, now).to_json()
