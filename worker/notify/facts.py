"""What a message says about its checkpoint and ticket, read from the database in a few queries.

The columns a message needs (`ABOUT`, the ticket's stored context among them: subject, group,
assignee) are read in one query for a batch, or come straight from the fire step's
``UPDATE … RETURNING`` (a fired batch is delivered without reading its checkpoints again).
Two more facts live elsewhere: the customer and their time zone (in the ticket's ``created``
event) and, for a warning or a reminder, its clock's breach instant (the deadline the message is
about).

`checkpoint_facts` words them for its messages (`worker.notify.messages.CheckpointFacts`), for
the deliverer and for an acknowledgement link's page alike (`page_facts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.time_left import left_in_key
from shared.db.models import Checkpoint, StoredEvent, Ticket
from shared.db.statements import among
from worker.notify.messages import CheckpointFacts, MessageFacts, ticket_link
from worker.notify.problem_listing import problem_listings
from worker.policies.book import LoadedPolicy, PolicyBook

# Plain columns, not ORM objects: a ticket's row also holds its whole SLA snapshot. The tables'
# own (Core) columns: a batch's thousand rows come back as plain rows, not through the ORM.
_CHECKPOINT, _TICKET = Checkpoint.__table__.c, Ticket.__table__.c
ABOUT = (
    _CHECKPOINT.id,
    _CHECKPOINT.ticket_pk,
    _CHECKPOINT.key,
    _CHECKPOINT.kind,
    _CHECKPOINT.metric,
    _CHECKPOINT.percent,
    _CHECKPOINT.tier,
    _CHECKPOINT.due_at,
    _TICKET.ticket_id,
    _TICKET.source,
    _TICKET.policy,
    _TICKET.plan,
    _TICKET.priority,
    _TICKET.subject,
    _TICKET.group_name,
    _TICKET.assignee,
)
# Kinds whose message is about another instant: their clock's breach.
_ABOUT_THE_BREACH = ("warning", "reminder")


def checkpoints_about(session: Session, checkpoint_ids: Iterable[int]) -> dict[int, Any]:
    """Each checkpoint's `ABOUT` row, by id (one query)."""
    query = (
        select(*ABOUT)
        .select_from(
            Checkpoint.__table__.join(Ticket.__table__, _CHECKPOINT.ticket_pk == _TICKET.id)
        )
        .where(among(session, _CHECKPOINT.id, sorted(set(checkpoint_ids))))
    )
    return {int(row.id): row for row in session.execute(query).all()}


@dataclass(frozen=True)
class TicketFacts:
    """What the checkpoints' tickets add: customers and breach instants (two queries at most)."""

    customers: dict[int, tuple[str | None, str | None]]  # ticket pk -> (customer, its time zone)
    breaches: dict[tuple[int, str], datetime]  # (ticket pk, clock) -> breach instant
    # a recurring incident's checkpoint id -> its `CheckpointFacts` problem and listing
    problems: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, rows: Sequence[Any]) -> TicketFacts:
        """For `ABOUT` rows; the breaches are read only if a warning or a reminder is among them."""
        ticket_pks = sorted({row.ticket_pk for row in rows})
        customers: dict[int, tuple[str | None, str | None]] = {}
        if ticket_pks:
            for ticket_pk, customer, customer_tz in session.execute(
                select(
                    StoredEvent.ticket_pk,
                    StoredEvent.payload["customer"].as_string(),
                    StoredEvent.payload["customer_timezone"].as_string(),
                )
                .where(
                    among(session, StoredEvent.ticket_pk, ticket_pks),
                    StoredEvent.type == "created",
                )
                .order_by(StoredEvent.id)
            ).all():
                customers.setdefault(ticket_pk, (customer, customer_tz))
        about_breach = sorted({row.ticket_pk for row in rows if row.kind in _ABOUT_THE_BREACH})
        breaches = _breaches(session, about_breach) if about_breach else {}
        return cls(customers, breaches, problem_listings(session, rows))

    def deadline(self, row: Any) -> datetime:
        """The instant the message is about: a warning or a reminder is about its clock's
        breach (the 75 % mark is not the deadline), a breach or an escalation its own instant."""
        own: datetime = row.due_at
        if row.kind not in _ABOUT_THE_BREACH:
            return own
        clock = row.key.split(":", 1)[0]  # first_response, update#2, resolution
        return self.breaches.get((row.ticket_pk, clock), own)


def _breaches(session: Session, ticket_pks: list[int]) -> dict[tuple[int, str], datetime]:
    """Each clock's breach instant, by (ticket, clock)."""
    query = select(Checkpoint.ticket_pk, Checkpoint.key, Checkpoint.due_at).where(
        among(session, Checkpoint.ticket_pk, ticket_pks), Checkpoint.key.like("%:breach")
    )
    return {(pk, key.split(":", 1)[0]): due for pk, key, due in session.execute(query).all()}


def checkpoint_facts(
    row: Any,  # an `ABOUT` row
    loaded: LoadedPolicy,
    tickets: TicketFacts,
    zones: dict[tuple[Any, ...], ZoneInfo],
) -> CheckpointFacts:
    """What all the messages about a checkpoint say (each adds its key and ack link); ``zones``
    keeps the time zones looked up (a storm is many tickets of few customers)."""
    customer, customer_tz = tickets.customers.get(row.ticket_pk, (None, None))
    zone_key = (row.policy, row.plan, customer, customer_tz)
    if zone_key not in zones:
        zone_name = loaded.policy.timezone_for(customer, customer_tz)
        plan = loaded.policy.plans[row.plan or loaded.policy.default_plan]
        zones[zone_key] = loaded.calendars.get(plan.calendar, zone_name).tz
    link = loaded.policy.ticket_links.get(row.source)
    return CheckpointFacts(
        ticket_id=row.ticket_id,
        source=row.source,
        customer=customer,
        priority=row.priority or "",
        plan=row.plan or "",
        kind=row.kind,
        metric=row.metric,
        percent=row.percent,
        tier=row.tier,
        due_at=tickets.deadline(row),
        time_left=left_in_key(row.key),
        tz=zones[zone_key],
        link=ticket_link(link, row.ticket_id) if link else None,
        subject=row.subject,
        group=row.group_name,
        assignee=row.assignee,
        **tickets.problems.get(int(row.id), {}),
    )


def page_facts(
    session: Session, policies: PolicyBook, checkpoint_id: int, key: str
) -> tuple[str, MessageFacts] | None:
    """What the page named by ``key`` says, and in which language (None: no such checkpoint,
    or its policy is not loaded any more): for the page an acknowledgement link shows."""
    row = checkpoints_about(session, [checkpoint_id]).get(checkpoint_id)
    if row is None:
        return None
    try:
        loaded = policies.named(row.policy)
    except KeyError:
        return None
    said = checkpoint_facts(row, loaded, TicketFacts.load(session, [row]), {})
    return loaded.policy.language, said.message(key)
