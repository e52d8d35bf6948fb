"""What a message says about its checkpoint and ticket, read from the database in a few queries.

The columns a message needs (`ABOUT`) are read in one query for a batch, or come straight
from the fire step's ``UPDATE … RETURNING`` (a fired batch is delivered without reading its
checkpoints again). Two more facts live elsewhere: the customer and their time zone (in the
ticket's ``created`` event) and, for a warning or a reminder, its clock's breach instant (the
deadline the message is about).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, StoredEvent, Ticket
from shared.db.statements import among

# Plain columns, not ORM objects: a ticket's row also holds its whole SLA snapshot.
ABOUT = (
    Checkpoint.id,
    Checkpoint.ticket_pk,
    Checkpoint.key,
    Checkpoint.kind,
    Checkpoint.metric,
    Checkpoint.percent,
    Checkpoint.tier,
    Checkpoint.due_at,
    Ticket.ticket_id,
    Ticket.source,
    Ticket.policy,
    Ticket.plan,
    Ticket.priority,
)
# Kinds whose message is about another instant: their clock's breach.
_ABOUT_THE_BREACH = ("warning", "reminder")


def checkpoints_about(session: Session, checkpoint_ids: Iterable[int]) -> dict[int, Any]:
    """Each checkpoint's `ABOUT` row, by id (one query)."""
    query = (
        select(*ABOUT)
        .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
        .where(among(session, Checkpoint.id, sorted(set(checkpoint_ids))))
    )
    return {int(row.id): row for row in session.execute(query).all()}


@dataclass(frozen=True)
class TicketFacts:
    """What the checkpoints' tickets add: customers and breach instants (two queries at most)."""

    customers: dict[int, tuple[str | None, str | None]]  # ticket pk -> (customer, its time zone)
    breaches: dict[tuple[int, str], datetime]  # (ticket pk, clock) -> breach instant

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
        return cls(customers, _breaches(session, about_breach) if about_breach else {})

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
