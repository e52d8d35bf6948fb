"""A ticket keeps the latest of each context field its events carried, whatever their order."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.context import TicketContext, changes
from shared.events import Event
from tests.support import event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def life() -> list[Event]:
    """A ticket re-titled, moved from tier 1 to tier 2, assigned, tagged and untagged."""
    return [
        event(
            "created",
            minutes(0),
            subject="Printer on fire",
            group="Tier 1",
            tags=["printer", "vip"],
            channel="email",
            ticket_type="incident",
            requester_id="u-100",
            priority="P1",
        ),
        event("assigned", minutes(10), group="Tier 2", assignee="ana", tags_added=["escalated"]),
        event("agent_replied", minutes(20), author="a-7", tags_removed=["printer"]),
        event("status_changed", minutes(30), status="open", subject="Printer on fire (floor 3)"),
        event("assigned", minutes(40), assignee="luis"),
    ]


EXPECTED = TicketContext(
    subject="Printer on fire (floor 3)",
    group="Tier 2",
    assignee="luis",
    tags=("vip", "escalated"),
    ticket_type="incident",
    channel="email",
    requester_id="u-100",
)


def test_each_field_takes_the_latest_event_that_carries_it() -> None:
    """An event that does not mention a field leaves it as it was."""
    assert TicketContext.of(life()) == EXPECTED


def test_any_arrival_order_and_any_repeat_gives_the_same_context() -> None:
    """Events arrive late, out of order and twice: the context depends only on what happened."""
    events = life()
    for shuffled in itertools.permutations(events):
        assert TicketContext.of(shuffled) == EXPECTED
    rng = random.Random(15)
    for _ in range(50):
        repeated = [*events, *rng.choices(events, k=4)]
        rng.shuffle(repeated)
        assert TicketContext.of(repeated) == EXPECTED


def test_a_late_older_event_does_not_overwrite_a_newer_value() -> None:
    """The assignment of 10:10 arrives after the one of 10:40: luis stays the assignee."""
    old, new = life()[1], life()[4]
    assert TicketContext.of([new, old]).assignee == "luis"


def test_a_full_tag_list_replaces_the_tags_added_and_removed_before_it() -> None:
    events = [
        *life(),
        event("status_changed", minutes(50), status="pending", tags=["waiting"]),
        event("customer_replied", minutes(60), tags_added=["answered"], tags_removed=["waiting"]),
    ]
    assert TicketContext.of(reversed(events)).tags == ("answered",)


def test_an_instant_shows_the_context_as_it_was_then() -> None:
    """A report as of 10:15 shows the ticket's tier-2 group and its first assignee."""
    then = TicketContext.of(life(), until=minutes(15))
    assert (then.subject, then.group, then.assignee) == ("Printer on fire", "Tier 2", "ana")
    assert then.tags == ("printer", "vip", "escalated")


def test_nothing_said_is_nothing_known() -> None:
    """A ticket whose portal sends no context has none (not an empty tag list)."""
    bare = TicketContext.of([event("created", T0, priority="P1")])
    assert bare == TicketContext()
    assert bare.to_json() == {
        "subject": None,
        "group": None,
        "assignee": None,
        "tags": None,
        "ticket_type": None,
        "channel": None,
        "requester_id": None,
    }


def test_the_stored_columns_read_back_as_the_same_context() -> None:
    """What the apply step writes on the ticket's row is what a message reads from it."""

    class Row:
        def __init__(self, columns: dict[str, object]) -> None:
            self.__dict__.update(columns)

    assert TicketContext.from_row(Row(EXPECTED.columns())) == EXPECTED
    assert TicketContext.from_row(Row(TicketContext().columns())) == TicketContext()


_TOLD = st.sampled_from(
    [
        {"type": "assigned", "group": "Billing"},
        {"type": "assigned", "group": "Technical"},
        {"type": "updated", "tags_added": ["vip"]},
        {"type": "updated", "tags_removed": ["vip"]},
        {"type": "updated", "tags": ["other"]},
        {"type": "updated", "ticket_type": "incident", "tags_added": ["other"]},
        {"type": "agent_replied", "channel": "email"},
    ]
)


@settings(max_examples=200, deadline=None)
@given(told=st.lists(st.tuples(_TOLD, st.integers(0, 6)), max_size=10))
def test_the_context_followed_instant_by_instant_is_the_context_as_of_each_instant(
    told: list[tuple[dict[str, str], int]],
) -> None:
    """The SLA core follows the context through the ticket's life (`changes`): after each
    instant it is exactly what a report as of that instant shows, same-instant events
    included."""
    events = [
        event(
            fields["type"], minutes(10 * slot), **{k: v for k, v in fields.items() if k != "type"}
        )
        for fields, slot in told
    ]
    followed = list(changes(events))
    assert [at for at, _ in followed] == sorted({e.occurred_at for e in events})
    for at, context in followed:
        assert context == TicketContext.of(events, until=at)
