"""Story 3: Freshdesk's distinct changes are never taken for retries; a true retry counts once.

Freshdesk sends no delivery id: a rule's webhook is the body its author wrote, rendered once
and sent again as is on each retry (5, 35 and 95 minutes later). Two moves to Pending with no
comment in between render byte-identical bodies from the rule body Escalera documented before
(``status``, ``priority``, requester, company, group and the latest comments, no time), so a
body hash took the second for a retry and the ticket stayed open with its clock running.

Shapes: the bodies are the rule bodies of ``worker/adapters/freshdesk.py`` (the keys are ours,
Freshdesk has no webhook schema), with values as Freshdesk renders the placeholders:
``{{triggered_event}}`` as ``{status:{from:2,to:3}}`` (real deliveries captured in
github.com/zulip/zulip zerver/webhooks/freshdesk/fixtures/status_changed.json, priority_changed
.json), ``{{ticket.modified_on}}`` as Rails renders the ticket's ``updated_at``
(``2025-03-04 09:00:12 UTC``; the placeholder is ``Helpdesk::TicketDrop#modified_on`` in
Freshdesk's own source, github.com/Ramesh-Veeriaperumal/freshconsult
app/drops/helpdesk/ticket_drop.rb, and is used in a production rule body in a public
integration that creates Freshdesk rules through the API). The policy is the
``soporte-completo`` preset: pending pauses the clocks, ``High`` is P2.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.clock import State
from scheduler.evaluate import evaluate
from scheduler.timeline import build_timeline
from shared.events import Event, EventType
from tests.support import preset
from tests.unit.adapter_support import json_body
from worker.adapters.base import WebhookRequest
from worker.adapters.freshdesk import FreshdeskAdapter

ADAPTER = FreshdeskAdapter()
POLICY = preset("soporte-completo")
SECRET = {"x-escalera-webhook-secret": "freshdesk-shared-secret"}
DAY = datetime(2025, 3, 4, tzinfo=UTC)
PENDING = "{status:{from:2,to:3}}"
OPEN = "{status:{from:3,to:2}}"


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute, seconds=second)


def old_body(triggered: str, status: str, **extra: Any) -> dict[str, Any]:
    """The rule body documented before, as rendered: nothing in it says when (a test helper)."""
    return {
        "ticket_id": "10542",
        "triggered_event": triggered,
        "status": status,
        "priority": "High",
        "requester_email": "j.doe@fabrikam.example",
        "company": "Fabrikam",
        "group": "L1 Service Desk",
        "latest_public_comment": "",
        "latest_private_comment": "",
        **extra,
    }


def new_body(triggered: str, status: str, updated: str, **extra: Any) -> dict[str, Any]:
    """The documented rule body now: it carries ``{{ticket.modified_on}}`` (a test helper)."""
    return {**old_body(triggered, status, **extra), "updated_at": updated}


def deliver(body: dict[str, Any], received: datetime) -> Event:
    """What the adapter makes of ``body`` received at ``received`` (a test helper)."""
    [event] = ADAPTER.to_events(body, WebhookRequest(json_body(body), SECRET, received))
    return event


def created_at_eight() -> Event:
    return deliver(old_body("{ticket_action:created}", "Open"), at(8))


# --- story 3: distinct changes ----------------------------------------------------------------------


def test_pending_open_pending_with_the_old_body_ends_pending() -> None:
    """Pending -> Open -> Pending with no comment in between: the ticket ends pending, paused.

    The two Pending bodies are byte-identical; they arrive an hour apart."""
    events = [
        created_at_eight(),
        deliver(old_body(PENDING, "Pending"), at(9)),
        deliver(old_body(OPEN, "Open"), at(9, 30)),
        deliver(old_body(PENDING, "Pending"), at(10)),
    ]
    sla = evaluate(POLICY, events, at(10, 30))
    assert sla.status == "pending"
    assert sla.metrics["first_response"].state is State.PAUSED


def test_pending_open_pending_with_the_new_body_ends_pending() -> None:
    """With ``updated_at`` in the body, each change is dated when Freshdesk made it."""
    events = [
        created_at_eight(),
        deliver(new_body(PENDING, "Pending", "2025-03-04 09:00:12 UTC"), at(9, 0, 14)),
        deliver(new_body(OPEN, "Open", "2025-03-04 09:30:05 UTC"), at(9, 30, 7)),
        deliver(new_body(PENDING, "Pending", "2025-03-04 10:00:40 UTC"), at(10, 0, 42)),
    ]
    assert len({e.event_id for e in events}) == 4
    sla = evaluate(POLICY, events, at(10, 30))
    assert (sla.status, sla.metrics["first_response"].state) == ("pending", State.PAUSED)


# --- a true retry still counts once -----------------------------------------------------------------


def test_a_retry_of_the_new_body_is_one_event_dated_when_the_change_happened() -> None:
    """Freshdesk resends the same bytes 5 and 35 minutes later: one event id, and the change is
    dated by ``updated_at``, not by the retry's arrival."""
    body = new_body(PENDING, "Pending", "2025-03-04 09:00:12 UTC")
    first, again, last = (deliver(body, at(9, m)) for m in (0, 5, 35))
    assert first.event_id == again.event_id == last.event_id
    assert {first.occurred_at, last.occurred_at} == {at(9, 0, 12)}


def test_a_retry_of_a_change_in_the_old_body_changes_nothing() -> None:
    """Without a time in the body a retry cannot be told from a repeat, so it is a new event;
    applying it again leaves the ticket as it was (it is already pending)."""
    created, pending = created_at_eight(), deliver(old_body(PENDING, "Pending"), at(9))
    retry = deliver(old_body(PENDING, "Pending"), at(9, 5))
    assert retry.event_id != pending.event_id
    once = evaluate(POLICY, [created, pending], at(10)).to_json()
    twice = evaluate(POLICY, [created, pending, retry], at(10)).to_json()
    assert once == twice


def test_a_retried_reply_in_the_old_body_counts_once() -> None:
    """A reply must not be doubled: the same reply body is the same event, whenever it comes."""
    reply = old_body(
        "{reply_sent:sent}", "Open", event="agent_replied", latest_public_comment="On our way."
    )
    events = [created_at_eight(), deliver(reply, at(9)), deliver(reply, at(9, 35))]
    assert events[1].event_id == events[2].event_id
    assert build_timeline(POLICY, events, at(10)).responses == (at(9),)


def test_two_replies_with_the_same_text_are_two_with_the_new_body() -> None:
    """The same text ("On it.") twice, an hour apart: two responses, each when written."""
    events = [created_at_eight()]
    for when, updated in ((at(9), "2025-03-04 09:00:00 UTC"), (at(10), "2025-03-04 10:00:00 UTC")):
        body = new_body("{reply_sent:sent}", "Open", updated, event="agent_replied")
        events.append(deliver({**body, "latest_public_comment": "On it."}, when))
    assert build_timeline(POLICY, events, at(11)).responses == (at(9), at(10))


def test_a_reply_sent_and_set_as_pending_is_two_events() -> None:
    """An agent's "Send and set as Pending": the reply rule and the status rule fire for one
    update, with the same ``updated_at``; both count."""
    updated = "2025-03-04 09:00:12 UTC"
    reply = deliver(new_body("{reply_sent:sent}", "Pending", updated, event="agent_replied"), at(9))
    status = deliver(new_body(PENDING, "Pending", updated), at(9))
    assert (reply.type, status.type) == (EventType.AGENT_REPLIED, EventType.STATUS_CHANGED)
    sla = evaluate(POLICY, [created_at_eight(), reply, status], at(10))
    assert (sla.status, sla.metrics["first_response"].state) == ("pending", State.MET)


# --- how updated_at is read ------------------------------------------------------------------------


def test_updated_at_in_the_accounts_zone_is_read_with_its_offset() -> None:
    """Rails renders a time in a zone other than UTC with its offset (``+0530``)."""
    event = deliver(new_body(PENDING, "Pending", "2025-03-04 14:30:12 +0530"), at(9, 5))
    assert event.occurred_at == at(9, 0, 12)
    iso = deliver(new_body(PENDING, "Pending", "2025-03-04T10:00:12+01:00"), at(9, 5))
    assert iso.occurred_at == at(9, 0, 12)


def test_an_updated_at_that_cannot_be_read_still_tells_changes_apart() -> None:
    """A rendering Escalera does not know is logged; the event is dated when it arrived, and the
    two Pending changes stay two."""
    first = deliver(new_body(PENDING, "Pending", "Tue, 4 Mar, 2025 at 9:00 AM"), at(9))
    second = deliver(new_body(PENDING, "Pending", "Tue, 4 Mar, 2025 at 10:00 AM"), at(10))
    assert first.occurred_at == at(9) and first.event_id != second.event_id
