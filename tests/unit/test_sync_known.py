"""What `escalera sync` takes for already stored: a webhook's copy of the change, never another.

Each pair below is one change as the webhook delivered it (dated by its delivery, a few seconds
after the change, with the portal's webhook id) and as the API reports it (dated at the change,
with a ``sync:`` id), or two distinct changes that only look alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import Event
from worker.sync.known import TOLERANCE, already_stored, new_events, same_change

CHANGE = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
DELIVERY = CHANGE + timedelta(seconds=40)  # the webhook reached us 40 s after the change


def ev(kind: str, at: datetime, event_id: str, ticket: str = "501", **fields: Any) -> Event:
    return Event.model_validate(
        {
            "event_id": event_id,
            "source": "zendesk",
            "ticket_id": ticket,
            "type": kind,
            "occurred_at": at,
            **fields,
        }
    )


REPLY = {"author": "9001", "author_role": "agent", "public": True}


def test_the_webhooks_copy_of_a_reply_is_stored_already_whichever_side_is_asked() -> None:
    webhook = ev("agent_replied", DELIVERY, "01JD8Z6W5N8X", **REPLY)
    pulled = ev("agent_replied", CHANGE, "sync:zendesk:audit:77:78", **REPLY)
    assert already_stored(pulled, [webhook])
    assert already_stored(webhook, [pulled])


def test_the_same_content_an_hour_later_is_a_distinct_change() -> None:
    webhook = ev("agent_replied", DELIVERY, "01JD8Z6W5N8X", **REPLY)
    later = ev("agent_replied", CHANGE + timedelta(hours=1), "sync:zendesk:audit:80:81", **REPLY)
    assert not already_stored(later, [webhook])
    assert not already_stored(webhook, [later])


def test_the_tolerance_is_two_minutes_either_way() -> None:
    stored = ev("status_changed", CHANGE, "w-1", status="pending")
    for offset in (TOLERANCE, -TOLERANCE):
        assert already_stored(
            ev("status_changed", CHANGE + offset, "s-1", status="pending"), [stored]
        )
    for offset in (TOLERANCE + timedelta(seconds=1), -TOLERANCE - timedelta(seconds=1)):
        assert not already_stored(
            ev("status_changed", CHANGE + offset, "s-1", status="pending"), [stored]
        )


def test_the_same_id_is_the_same_change_whatever_its_date_says() -> None:
    """Jira gives a changelog the same id on both paths; a later sync repeats its own ids."""
    webhook = ev("status_changed", DELIVERY, "10042:status", status="pending")
    pulled = ev("status_changed", CHANGE - timedelta(hours=3), "10042:status", status="pending")
    assert already_stored(pulled, [webhook])


@pytest.mark.parametrize(
    ("stored", "pulled"),
    [
        pytest.param(
            ev("agent_replied", DELIVERY, "w", **REPLY),
            ev("agent_replied", CHANGE, "s", **{**REPLY, "author": "9002"}),
            id="another agent's reply",
        ),
        pytest.param(
            ev("agent_replied", DELIVERY, "w", **REPLY),
            ev("agent_replied", CHANGE, "s", **{**REPLY, "public": False}),
            id="an internal note beside a public reply",
        ),
        pytest.param(
            ev("agent_replied", DELIVERY, "w", **REPLY),
            ev("customer_replied", CHANGE, "s", author="9001", author_role="requester"),
            id="a reply from the other side",
        ),
        pytest.param(
            ev("status_changed", DELIVERY, "w", status="pending"),
            ev("status_changed", CHANGE, "s", status="on_hold"),
            id="a move to another status",
        ),
        pytest.param(
            ev("resolved", DELIVERY, "w", status="solved"),
            ev("status_changed", CHANGE, "s", status="pending"),
            id="resolved, then pending",
        ),
        pytest.param(
            ev("priority_changed", DELIVERY, "w", priority="urgent"),
            ev("priority_changed", CHANGE, "s", priority="high"),
            id="another priority",
        ),
        pytest.param(
            ev("assigned", DELIVERY, "w", tier=2, group="360002222222"),
            ev("assigned", CHANGE, "s", tier=3, group="360003333333"),
            id="another tier",
        ),
        pytest.param(
            ev("assigned", DELIVERY, "w", tier=2),
            ev("assigned", CHANGE, "s", assignee="9001"),
            id="an agent assignment beside an escalation to tier 2",
        ),
        pytest.param(
            ev("updated", DELIVERY, "w", tags_added=["vip"]),
            ev("updated", CHANGE, "s", tags_removed=["vip"]),
            id="a tag removed, not added",
        ),
        pytest.param(
            ev("status_changed", DELIVERY, "w", status="pending"),
            ev("status_changed", CHANGE, "s", ticket="502", status="pending"),
            id="the same change of another ticket",
        ),
        pytest.param(
            ev("created", DELIVERY, "w"),
            ev("agent_replied", CHANGE, "s", **REPLY),
            id="a reply is no creation",
        ),
    ],
)
def test_a_different_change_at_the_same_time_is_not_stored(stored: Event, pulled: Event) -> None:
    assert not already_stored(pulled, [stored])
    assert not same_change(stored, pulled)


@pytest.mark.parametrize(
    ("stored", "pulled"),
    [
        pytest.param(
            ev("reopened", DELIVERY, "w", status="open"),
            ev("status_changed", CHANGE, "s", status="open"),
            id="reopened, told by an API that does not know the status before",
        ),
        pytest.param(
            ev("priority_changed", DELIVERY, "w", priority="URGENT"),
            ev("priority_changed", CHANGE, "s", priority="urgent"),
            id="a priority in another case",
        ),
        pytest.param(
            ev("updated", DELIVERY, "w", tags_added=["vip", "plan_gold"], subject="Printer"),
            ev("updated", CHANGE, "s", tags_added=["plan_gold", "vip"], subject="Printer (3rd)"),
            id="tags in another order, the subject it carries renamed since",
        ),
        pytest.param(
            ev("assigned", DELIVERY, "w", tier=2, assignee="9001"),
            ev("assigned", CHANGE, "s", tier=2, assignee="9002"),
            id="an escalation, the assignee it carries changed since",
        ),
    ],
)
def test_the_same_change_told_differently_is_stored(stored: Event, pulled: Event) -> None:
    assert already_stored(pulled, [stored])


def test_a_ticket_is_created_once_whatever_each_path_dates_it() -> None:
    """The webhook may be dated by a delivery long after an e-mail ticket came in."""
    webhook = ev("created", CHANGE + timedelta(hours=5), "01JD8Z6W5N8X", priority="P3")
    pulled = ev("created", CHANGE, "sync:zendesk:audit:70:71", priority="P3")
    assert already_stored(pulled, [webhook])
    assert not already_stored(pulled, [ev("created", CHANGE, "w", ticket="502")])


def test_each_stored_event_stands_for_one_change() -> None:
    """Two replies by the same agent a minute apart; the webhook of only the first arrived."""
    first = ev("agent_replied", CHANGE, "s-1", **REPLY)
    second = ev("agent_replied", CHANGE + timedelta(minutes=1), "s-2", **REPLY)
    webhook = ev("agent_replied", CHANGE + timedelta(seconds=20), "w-1", **REPLY)
    split = new_events([first, second], {"501": [webhook]})
    assert (split.stored, split.new) == ([first], [second])
    both = new_events(
        [first, second], {"501": [webhook, webhook.model_copy(update={"event_id": "w-2"})]}
    )
    assert (both.stored, both.new) == ([first, second], [])


def test_an_id_match_is_not_taken_by_a_content_match() -> None:
    """The stored event with the pulled one's id is its own; an alike change beside it is new."""
    stored = ev("status_changed", CHANGE, "10042:status", status="pending")
    alike = ev("status_changed", CHANGE + timedelta(seconds=30), "10043:status", status="pending")
    same = ev("status_changed", CHANGE, "10042:status", status="pending")
    split = new_events([alike, same], {"501": [stored]})
    assert (split.new, split.stored) == ([alike], [same])


def test_a_change_pulled_twice_is_new_once() -> None:
    """A ticket changed during the pull shows on two pages of an incremental export."""
    reply = ev("agent_replied", CHANGE, "sync:zendesk:audit:77:78", **REPLY)
    split = new_events([reply, reply], {"501": []})
    assert (split.new, split.stored) == ([reply], [reply])
