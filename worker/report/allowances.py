"""Contract allowances (seed 004): tickets per customer per year, and who may report. Pure.

A customer's tickets count against its plan's ``tickets_per_year`` in the allowance year they
were created in (from each anniversary of the customer's ``contract_start``, by default January
1), on the customer's local date. Tickets created in the plan's ``grace_months`` after the
customer's ``go_live`` do not count. A warning is due at each of the allowance's ``warn_at``
percentages (80 % and 100 % by default).

An event whose ``requester`` is not among the customer's ``contacts`` is flagged (a customer
without a contact list flags nobody).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.policy import Allowance, CustomerSpec, Policy


@dataclass(frozen=True)
class CreatedTicket:
    source: str
    ticket_id: str
    customer: str
    created_at: datetime


@dataclass(frozen=True)
class ContactEvent:
    source: str
    ticket_id: str
    event_id: str
    type: str
    occurred_at: datetime
    customer: str
    requester: str


@dataclass(frozen=True)
class Usage:
    """One customer's consumption in one allowance year."""

    customer: str
    plan: str
    year_start: date
    year_end: date  # exclusive
    allowance: int
    counted: int
    excluded: int  # created in the grace months after go-live
    warn_at: tuple[int, ...]
    contacts: int | None  # listed in the policy
    contacts_allowed: int | None  # by the plan

    @property
    def share(self) -> float:
        return 100 * self.counted / self.allowance

    @property
    def levels(self) -> tuple[int, ...]:
        """The warning percentages reached."""
        return reached(self.counted, self.allowance, self.warn_at)


def reached(counted: int, allowance: int, warn_at: Iterable[int]) -> tuple[int, ...]:
    """The percentages of ``allowance`` that ``counted`` tickets have used up (exact, no floats)."""
    return tuple(p for p in warn_at if counted * 100 >= p * allowance)


def allowance_of(policy: Policy, customer: str) -> tuple[str, Allowance] | None:
    """The customer's contracted plan and its ticket allowance, if it has one."""
    plan = policy.plan_for(customer, None)
    spec = policy.plans[plan].allowance if plan in policy.plans else None
    if spec is None or spec.tickets_per_year is None:
        return None
    return plan, spec


def local_day(policy: Policy, customer: str, instant: datetime) -> date:
    return instant.astimezone(ZoneInfo(policy.timezone_for(customer, None))).date()


def allowance_year(spec: CustomerSpec | None, day: date) -> tuple[date, date]:
    """The allowance year ``day`` falls in: [start, end)."""
    anchor = spec.contract_start if spec and spec.contract_start else date(day.year, 1, 1)
    start = _anniversary(anchor, day.year)
    if start > day:
        start = _anniversary(anchor, day.year - 1)
    return start, _anniversary(anchor, start.year + 1)


def in_grace(spec: CustomerSpec | None, allowance: Allowance, day: date) -> bool:
    if spec is None or spec.go_live is None:
        return False
    return spec.go_live <= day < _add_months(spec.go_live, allowance.grace_months)


def usage(policy: Policy, tickets: Iterable[CreatedTicket]) -> list[Usage]:
    """Per customer with an allowance and per allowance year with tickets, what was used."""
    counted: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for ticket in tickets:
        terms = allowance_of(policy, ticket.customer)
        if terms is None:
            continue
        spec = policy.customers.get(ticket.customer)
        day = local_day(policy, ticket.customer, ticket.created_at)
        year = allowance_year(spec, day)[0]
        counted[ticket.customer, year][1 if in_grace(spec, terms[1], day) else 0] += 1
    return [
        _usage(policy, customer, year, count, excluded)
        for (customer, year), (count, excluded) in sorted(counted.items())
    ]


def _usage(policy: Policy, customer: str, year: date, count: int, excluded: int) -> Usage:
    terms = allowance_of(policy, customer)
    assert terms is not None  # usage() counts only customers with an allowance
    plan, allowance = terms
    spec = policy.customers.get(customer)
    start, end = allowance_year(spec, year)
    return Usage(
        customer=customer,
        plan=plan,
        year_start=start,
        year_end=end,
        allowance=allowance.tickets_per_year or 0,
        counted=count,
        excluded=excluded,
        warn_at=tuple(allowance.warn_at),
        contacts=len(spec.contacts) if spec and spec.contacts is not None else None,
        contacts_allowed=allowance.authorized_contacts,
    )


def unauthorized(policy: Policy, events: Iterable[ContactEvent]) -> list[ContactEvent]:
    """Events reported by someone not among the customer's authorized contacts."""
    flagged = [e for e in events if authorized(policy, e.customer, e.requester) is False]
    return sorted(flagged, key=lambda e: (e.occurred_at, e.source, e.ticket_id, e.event_id))


def authorized(policy: Policy, customer: str | None, requester: str | None) -> bool | None:
    """Whether ``requester`` may report for ``customer``; None when the policy cannot tell."""
    spec = policy.customers.get(customer) if customer else None
    if spec is None or spec.contacts is None or requester is None:
        return None
    return requester.casefold() in {c.casefold() for c in spec.contacts}


def _anniversary(anchor: date, year: int) -> date:
    """``anchor``'s month and day in ``year`` (February 29 becomes the 28th)."""
    try:
        return anchor.replace(year=year)
    except ValueError:
        return anchor.replace(year=year, day=28)


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
