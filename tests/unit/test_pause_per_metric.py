"""``pause_when`` per metric: a desk names the clocks a status stops, as its tool does.

The desk is open round the clock (UTC), so working time is wall time. Every priority has the
same targets: first response 1 h, update every 2 h, next reply 1 h, resolution 8 h, tier 2 four
hours after creation. What differs is what pauses:

- the policy (Znuny): ``{update: [pending]}``, only the update clock;
- P2 (GLPI): ``{resolution: [pending, on_hold]}``, resolution, and with it the escalations;
- P3 (Zammad): ``[pending]``, every clock, as a list always did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings

from scheduler.evaluate import evaluate
from scheduler.sla import Kind, TicketSla
from shared.errors import PolicyError
from shared.events import Event
from shared.policy import Policy
from shared.policy_file import parse_policy
from tests.support import Ticket
from tests.unit.test_evaluate import histories
from tests.unit.test_policy_schema import POLICY_SCHEMA, problems
from worker.report.timeline import ticket_timeline

TERMS = (
    "first_response: 1h, update_every: 2h, next_reply: 1h, resolution: 8h, "
    "escalations: [{tier: 2, after: 4h}]"
)
DESKS = f"""\
name: desks
calendars: {{always: 24x7}}
priorities: {{P1: {{}}, P2: {{}}, P3: {{}}}}
plans: {{standard: {{calendar: always}}}}
default_plan: standard
pause_when: {{update: [pending]}}
targets:
  - {{priority: P1, {TERMS}}}
  - {{priority: P2, {TERMS}, pause_when: {{resolution: [pending, on_hold]}}}}
  - {{priority: P3, {TERMS}, pause_when: [pending]}}
"""
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def desks() -> Policy:
    return parse_policy(DESKS, "desks.yaml")


def at(hour: float) -> datetime:
    return T0 + timedelta(hours=hour - 9)


def due(sla: TicketSla) -> dict[str, datetime | None]:
    """Each clock's deadline, and tier 2's."""
    out = {name: metric.due_at for name, metric in sla.metrics.items()}
    tier2 = [c.due_at for c in sla.checkpoints if c.kind is Kind.ESCALATION and c.tier == 2]
    return {**out, "escalation": tier2[0] if tier2 else None}


def waited(priority: str) -> Ticket:
    """Pending 09:15–11:15, before anybody answered; answered at 11:30."""
    ticket = Ticket(at(9), priority=priority).status(at(9.25), "pending")
    return ticket.status(at(11.25), "open").reply(at(11.5))


def test_a_map_pauses_only_the_clocks_it_names(desks: Policy) -> None:
    """Znuny: pending stops the update clock alone. First response (and the first wait for a
    reply) breached at 10:00 while the ticket waited, resolution and tier 2 ran on; the update
    cycle from 11:30 is due at 13:30, and a later two hours pending move it to 15:30."""
    ticket = waited("P1")
    sla = ticket.sla(desks, at(12))
    assert sla.metrics["first_response"].breached_at == at(10)
    assert due(sla) == {
        "first_response": at(10),
        "update": at(13.5),
        "next_reply": at(10),
        "resolution": at(17),
        "escalation": at(13),
    }
    ticket.status(at(12), "pending").status(at(14), "open")
    assert due(ticket.sla(desks, at(14)))["update"] == at(15.5)


def test_escalations_pause_as_resolution_does_unless_the_map_names_them(desks: Policy) -> None:
    """GLPI: pending stops resolution (due 19:00, not 17:00) and tier 2 with it (15:00, not
    13:00), never the replies' clocks. Naming ``escalation: []`` lets tier 2 run on."""
    assert due(waited("P2").sla(desks, at(12))) == {
        "first_response": at(10),
        "update": at(13.5),
        "next_reply": at(10),
        "resolution": at(19),
        "escalation": at(15),
    }
    own = parse_policy(
        DESKS.replace(
            "{resolution: [pending, on_hold]}", "{resolution: [pending], escalation: []}"
        ),
        "own.yaml",
    )
    assert due(waited("P2").sla(own, at(12)))["escalation"] == at(13)


def test_a_list_still_pauses_every_clock(desks: Policy) -> None:
    """Zammad: the two hours pending move every deadline, and the 11:30 reply is on time."""
    sla = waited("P3").sla(desks, at(12))
    assert sla.metrics["first_response"].state.value == "met"
    assert due(sla) == {
        "first_response": at(12),
        "update": at(13.5),
        "next_reply": at(12),
        "resolution": at(19),
        "escalation": at(15),
    }


def test_a_targets_map_replaces_the_policys_whole_setting() -> None:
    """Under a policy pausing every clock on pending, a target's ``{update: [pending]}`` leaves
    its first response running: what a target's map leaves out is not paused."""
    policy = parse_policy(
        DESKS.replace("pause_when: {update: [pending]}", "pause_when: [pending, on_hold]").replace(
            "pause_when: [pending]}", "pause_when: {update: [pending]}}"
        ),
        "p.yaml",
    )
    assert due(waited("P1").sla(policy, at(12)))["first_response"] == at(12)
    assert due(waited("P3").sla(policy, at(12)))["first_response"] == at(10)


def test_an_empty_pause_when_on_a_target_keeps_the_policys() -> None:
    """As before per-metric maps: ``pause_when: []`` on a target is no setting of its own."""
    policy = parse_policy(DESKS.replace("pause_when: [pending]}", "pause_when: []}"), "p.yaml")
    assert due(waited("P3").sla(policy, at(12))) == due(waited("P1").sla(policy, at(12)))


EVERY_CLOCK = (
    "{first_response: [pending, on_hold], update: [pending, on_hold], "
    "next_reply: [pending, on_hold], resolution: [pending, on_hold], "
    "escalation: [pending, on_hold]}"
)


@settings(max_examples=150, deadline=None)
@given(history=histories())
def test_a_map_naming_every_clock_is_the_list(
    history: tuple[list[Event], list[Event], datetime],
) -> None:
    """A list means every clock: the same statuses named clock by clock give the same result."""
    events, _, now = history
    listed = parse_policy(DESKS.replace("{update: [pending]}", "[pending, on_hold]"), "l.yaml")
    mapped = parse_policy(DESKS.replace("{update: [pending]}", EVERY_CLOCK), "m.yaml")
    assert evaluate(mapped, events, now).to_json() == evaluate(listed, events, now).to_json()


@settings(max_examples=150, deadline=None)
@given(history=histories())
def test_any_order_or_repetition_gives_the_same_result_under_per_metric_pauses(
    desks: Policy, history: tuple[list[Event], list[Event], datetime]
) -> None:
    """Shuffled and repeated webhooks, clocks paused per metric: the same SLA."""
    original, scrambled, now = history
    assert evaluate(desks, scrambled, now).to_json() == evaluate(desks, original, now).to_json()


def test_the_report_timeline_names_the_clocks_a_partial_pause_stops(desks: Policy) -> None:
    """A pause of every clock reads as before; one of some clocks lists them."""
    for priority, metrics in (("P1", ["update"]), ("P3", None)):
        entries = ticket_timeline(desks, waited(priority).events, [], [], at(12))
        pauses = [(e.kind, e.detail.get("metrics")) for e in entries if e.kind != "event"]
        assert pauses == [("pause", metrics), ("resume", None)]


def test_policy_check_names_a_mistyped_clock_or_status() -> None:
    text = DESKS.replace("{update: [pending]}", "{updates: [pending], resolution: [waiting]}")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "desks.yaml")
    assert str(caught.value).splitlines() == [
        "desks.yaml:6: pause_when.updates: Input should be 'first_response', 'update', "
        "'next_reply', 'resolution' or 'escalation'",
        "desks.yaml:6: pause_when.resolution[0]: Input should be 'new', 'open', 'pending', "
        "'on_hold', 'solved' or 'closed'",
    ]


def test_an_editor_accepts_both_forms_and_marks_an_unknown_clock() -> None:
    assert problems(POLICY_SCHEMA, DESKS) == []
    assert problems(POLICY_SCHEMA, DESKS.replace("{update:", "{updates:")) != []
