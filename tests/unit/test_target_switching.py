"""A ticket that moves (a tag added, another group, a new type) moves to its new target, keeping
the working time already elapsed, as a priority change does. On the multi-team preset.

Its office is open Monday to Friday 08:00–18:00 New York (a business day is 10 hours). Billing
answers in 4 hours and resolves in 3 business days; Billing tickets tagged vip in 30 minutes and
1 business day; urgent Technical incidents in 15 minutes round the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.clock import State
from scheduler.target_changes import target_changes
from tests.support import Ticket, preset
from worker.report.timeline import ticket_timeline

NEW_YORK = ZoneInfo("America/New_York")
POLICY = preset("multi-team")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of March 2026 in New York (Monday the 2nd, Friday the 6th)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=NEW_YORK)


def billing_ticket() -> Ticket:
    return Ticket(at(2, 10), priority="P3", group="Billing", ticket_type="question")


def test_a_tag_added_mid_ticket_moves_the_clocks_keeping_the_time_elapsed() -> None:
    """Billing, then tagged vip at 10:20: 20 minutes of the 30 are used, due 10:30 (not 14:00);
    resolution, 20 minutes into its business day, is due Tuesday 10:00."""
    ticket = billing_ticket()
    before = ticket.sla(POLICY, at(2, 10, 15)).metrics
    assert (before["first_response"].due_at, before["resolution"].due_at) == (at(2, 14), at(5, 10))

    ticket.add("updated", at(2, 10, 20), tags_added=["vip"])
    metrics = ticket.sla(POLICY, at(2, 10, 25)).metrics
    fr = metrics["first_response"]
    assert (fr.target, fr.elapsed, fr.due_at) == (
        timedelta(minutes=30),
        timedelta(minutes=25),
        at(2, 10, 30),
    )
    assert metrics["resolution"].due_at == at(3, 10)


def test_a_tag_removed_again_moves_the_clocks_back() -> None:
    """vip for five minutes, then removed: the 30-minute deadline is gone before it came, and
    the 4-hour one counts from creation again; the same checkpoints, re-timed."""
    ticket = billing_ticket().add("updated", at(2, 10, 20), tags_added=["vip"])
    as_vip = {c.key: c.due_at for c in ticket.sla(POLICY, at(2, 10, 24)).checkpoints}
    ticket.add("updated", at(2, 10, 25), tags_removed=["vip"])
    sla = ticket.sla(POLICY, at(2, 11))
    fr = sla.metrics["first_response"]
    assert (fr.state, fr.due_at) == (State.RUNNING, at(2, 14))
    back = {c.key: c.due_at for c in sla.checkpoints}
    assert as_vip["first_response:breach"] == at(2, 10, 30)
    assert back["first_response:breach"] == at(2, 14)
    assert back.keys() == as_vip.keys()


def test_another_group_moves_the_clock_onto_its_targets_calendar() -> None:
    """An urgent incident in Billing (office hours) on Friday 17:50, moved to Technical at
    17:55: 5 minutes of its 15 are used, the other 10 run round the clock: due 18:05 Friday,
    not Monday; and it escalates to tier 2 an hour in, Friday evening."""
    ticket = Ticket(at(6, 17, 50), priority="P1", group="Billing", ticket_type="incident")
    assert ticket.sla(POLICY, at(6, 17, 52)).metrics["first_response"].due_at == at(9, 11, 50)

    ticket.add("assigned", at(6, 17, 55), group="Technical")
    sla = ticket.sla(POLICY, at(6, 18))
    assert sla.metrics["first_response"].due_at == at(6, 18, 5)
    escalation = next(c for c in sla.checkpoints if c.key == "escalation:tier2")
    assert escalation.due_at == at(6, 18, 50)


def test_a_change_no_condition_looks_at_changes_nothing() -> None:
    """Another tag, the group's name in capitals, an assignee: the same target, the same
    clocks, and no change of target to report."""
    plain = billing_ticket().reply(at(2, 11))
    noisy = billing_ticket().reply(at(2, 11))
    noisy.add("updated", at(2, 10, 10), tags_added=["refund"])
    noisy.add("assigned", at(2, 10, 20), group="BILLING", assignee="ana")
    now = at(2, 12)
    assert noisy.sla(POLICY, now).to_json() == plain.sla(POLICY, now).to_json()
    assert [c.name for c in target_changes(POLICY, noisy.events, now)] == ["billing"]


def test_the_timeline_says_which_target_and_why() -> None:
    """At creation, then at each change of target (not at every change: the tag refund), with
    its cause in the policy's words (the portal's tag Vip is the policy's vip)."""
    ticket = billing_ticket()
    ticket.add("updated", at(2, 10, 20), tags_added=["Vip"])
    ticket.add("updated", at(2, 10, 22), tags_added=["refund"])
    ticket.add("updated", at(2, 10, 25), tags_removed=["Vip"])
    ticket.add("assigned", at(2, 10, 30), group="Technical")
    ticket.add("updated", at(2, 10, 40), ticket_type="incident")
    ticket.add("priority_changed", at(2, 10, 45), priority="P1")
    entries = ticket_timeline(POLICY, ticket.events, [], [], at(2, 11))
    said = [(e.at, e.what, e.detail["why"]) for e in entries if e.kind == "targets"]
    assert said == [
        (at(2, 10), "billing", None),
        (at(2, 10, 20), "billing-vip", "tag vip added"),
        (at(2, 10, 25), "billing", "tag vip removed"),
        (at(2, 10, 30), "question", "group Billing → Technical"),
        (at(2, 10, 40), "incident", "ticket type question → incident"),
        (at(2, 10, 45), "incident-urgent", "priority P3 → P1"),
    ]


def test_a_policy_without_names_or_conditions_shows_no_targets() -> None:
    """Plan and priority say it all: the timeline is as it always was."""
    ticket = Ticket(at(2, 10), priority="P3").add("priority_changed", at(2, 10, 5), priority="P1")
    entries = ticket_timeline(preset("soporte-completo"), ticket.events, [], [], at(2, 11))
    assert [e.kind for e in entries] == ["event", "event"]
