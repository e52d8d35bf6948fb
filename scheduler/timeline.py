"""Folding one ticket's events into its timeline: phases of constant state, replies, escalations.

Events are de-duplicated on ``(source, event_id)`` and folded in a total order (occurred_at,
then the kind of event, then event id), so any order or repetition of the same events gives
the same timeline. Events later than ``now`` have not happened yet and are left out.

Each phase names the target in force. Where targets have conditions (``when``), the ticket's
context (group, type, channel, tags) is followed too, and a phase is cut where the matching
target changes, not where the context does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from scheduler.context import changes
from scheduler.waiting import Wait, Waits
from shared.errors import EvaluationError, TicketNotCreated
from shared.events import AuthorRole, Event, EventType, Status
from shared.policy import Policy
from shared.target_conditions import TicketFacts

# Within one instant, a ticket must exist before anything happens to it; state changes come
# before replies so that a reply and a resolution in the same second both count.
_TYPE_ORDER = {
    kind: rank
    for rank, kind in enumerate(
        [
            EventType.CREATED,
            EventType.PRIORITY_CHANGED,
            EventType.ASSIGNED,
            EventType.UPDATED,
            EventType.STATUS_CHANGED,
            EventType.REOPENED,
            EventType.AGENT_REPLIED,
            EventType.CUSTOMER_REPLIED,
            EventType.ESCALATION_REQUESTED,
            EventType.RESOLVED,
            EventType.CLOSED,
        ]
    )
}
_DONE = frozenset({Status.SOLVED, Status.CLOSED})


@dataclass(frozen=True)
class Phase:
    """A stretch of the ticket's life in one state; ``end`` is None for the current one.
    ``target``: the position in the policy's targets of the one in force, None if none is."""

    start: datetime
    end: datetime | None
    status: Status
    priority: str
    tier: int
    target: int | None

    @property
    def resolved(self) -> bool:
        return self.status in _DONE


@dataclass(frozen=True)
class EscalationRequest:
    at: datetime
    event_id: str
    tier: int


@dataclass(frozen=True)
class Timeline:
    """What the SLA clocks need to know about one ticket."""

    ticket_id: str
    source: str
    created_at: datetime
    plan: str
    customer: str | None
    zone_name: str
    phases: tuple[Phase, ...]
    responses: tuple[datetime, ...]
    reopenings: tuple[datetime, ...]
    escalation_requests: tuple[EscalationRequest, ...]
    # when the customer waited for a reply (`scheduler.waiting`): the next_reply clock's cycles
    waits: tuple[Wait, ...] = ()

    @property
    def current(self) -> Phase:
        return self.phases[-1]

    @property
    def first_response_at(self) -> datetime | None:
        return self.responses[0] if self.responses else None


def order(events: Iterable[Event], now: datetime) -> list[Event]:
    """The events that have happened by ``now``, without repeats, in folding order."""
    unique: dict[tuple[str, str], Event] = {}
    for event in events:
        if event.occurred_at <= now:
            previous = unique.get(event.key)
            if previous is None or _sort_key(event) < _sort_key(previous):
                unique[event.key] = event
    # Once repeats are gone (source, event_id) is unique: the content never breaks a tie.
    return sorted(unique.values(), key=_order_key)


def _order_key(event: Event) -> tuple[datetime, int, str, str]:
    return (event.occurred_at, _TYPE_ORDER[event.type], event.source, event.event_id)


def _sort_key(event: Event) -> tuple[datetime, int, str, str, str]:
    """Which of two deliveries of one event counts: the earlier, then by content."""
    return (*_order_key(event), event.model_dump_json())


def check_event(policy: Policy, event: Event) -> None:
    """Refuse an event the policy can never evaluate (unknown priority or plan), on arrival.

    The worker calls this before storing an event, so a poison event is dead-lettered at once
    rather than stored and found only when the ticket's created event arrives.
    """
    if event.priority is not None and policy.priority_named(event.priority) is None:
        known = ", ".join(policy.priorities)
        raise EvaluationError(
            f"event {event.event_id}: unknown priority {event.priority!r} (known: {known})"
        )
    if event.type is EventType.CREATED:
        plan = policy.plan_for(event.customer, event.plan)
        if plan not in policy.plans:
            raise EvaluationError(
                f"event {event.event_id}: unknown plan {plan!r} (known: {', '.join(policy.plans)})"
            )
        _Folder(policy, event)  # the priority must resolve: directly, by matrix or by default


def build_timeline(policy: Policy, events: Iterable[Event], now: datetime) -> Timeline:
    folded = order(events, now)
    created = next((e for e in folded if e.type is EventType.CREATED), None)
    if created is None:
        ticket = folded[0].ticket_id if folded else "?"
        raise TicketNotCreated(f"ticket {ticket}: no created event yet")
    return _Folder(policy, created).fold(folded)


class _Folder:
    """Walks the ordered events once, cutting a new phase at every change of state."""

    def __init__(self, policy: Policy, created: Event) -> None:
        self.policy = policy
        self.created = created
        self.plan = policy.plan_for(created.customer, created.plan)
        if self.plan not in policy.plans:
            raise EvaluationError(f"event {created.event_id}: unknown plan {self.plan!r}")
        # What the targets' conditions see (None: no target has any); the policy remembers the
        # target each priority and facts choose.
        self.facts: TicketFacts | None = None
        if policy.chooses_by_conditions:
            self.facts = policy.vocabulary.facts(customer=created.customer, source=created.source)
        priority = self._created_priority(created)
        first = Phase(
            created.occurred_at,
            None,
            created.status or Status.NEW,
            priority,
            created.tier or 1,
            policy.choose_target(self.plan, priority, self.facts),
        )
        self.phases: list[Phase] = [first]
        self.requester_id: str | None = created.requester_id
        self.responses: list[datetime] = []
        self.reopenings: list[datetime] = []
        self.requests: list[EscalationRequest] = []
        self.waits = Waits(created.occurred_at, first.resolved)

    def fold(self, events: list[Event]) -> Timeline:
        # The requester the portal named last: a comment payload may omit who asked (Jira's
        # comment_created carries a reduced issue), so replies are judged against the ticket's.
        self.requester_id = next(
            (e.requester_id for e in reversed(events) if e.requester_id is not None), None
        )
        self.told = deque(self._contexts(events))
        for event in events:
            at = max(event.occurred_at, self.created.occurred_at)
            if self.told:
                self._tell(at)
            if event is not self.created:
                self._apply(event, at)
        self._tell(None)
        c = self.created
        return Timeline(
            ticket_id=c.ticket_id,
            source=c.source,
            created_at=c.occurred_at,
            plan=self.plan,
            customer=c.customer,
            zone_name=self.policy.timezone_for(c.customer, c.customer_timezone),
            phases=tuple(self.phases),
            responses=tuple(self.responses),
            reopenings=tuple(self.reopenings),
            escalation_requests=tuple(self.requests),
            waits=self.waits.all(),
        )

    def _apply(self, event: Event, at: datetime) -> None:
        phase = self.phases[-1]
        match event.type:
            case EventType.AGENT_REPLIED if self._is_response(event):
                self.responses.append(at)
            case EventType.STATUS_CHANGED if event.status is not None:
                self._move(at, status=event.status)
            case EventType.PRIORITY_CHANGED if event.priority is not None:
                self._move(at, priority=self._priority(event.priority, event))
            case EventType.RESOLVED:
                self._move(at, status=Status.SOLVED)
            case EventType.CLOSED:
                self._move(at, status=Status.CLOSED)
            case EventType.REOPENED:
                self._move(at, status=Status.OPEN)
            case EventType.ASSIGNED if event.tier is not None:
                self._move(at, tier=event.tier)
            case EventType.ESCALATION_REQUESTED:
                tier = event.tier or min(phase.tier + 1, 9)
                self.requests.append(EscalationRequest(at, event.event_id, max(tier, 2)))
        self._wait(event, at, phase)

    def _wait(self, event: Event, at: datetime, before: Phase) -> None:
        """Whether the customer waits for a reply after ``event`` (the next_reply clock)."""
        if self._is_response(event):
            self.waits.answered(at)
        elif self._is_customer_message(event):
            self.waits.asked(at, resolved=before.resolved)
        after = self.phases[-1]
        self.waits.moved(at, was_resolved=before.resolved, resolved=after.resolved)

    def _is_customer_message(self, event: Event) -> bool:
        """A message that waits for a reply: any the customer's side wrote (the requester or
        another person, such as a colleague in copy), whatever type the portal gave it; never
        an automatic one."""
        if event.automatic or event.author_role is AuthorRole.SYSTEM:
            return False
        if event.type is EventType.CUSTOMER_REPLIED:
            return True
        by_requester = event.author is not None and event.author == self.requester_id
        by_customer = event.author_role in (AuthorRole.REQUESTER, AuthorRole.CUSTOMER)
        return event.type is EventType.AGENT_REPLIED and (by_requester or by_customer)

    def _is_response(self, event: Event) -> bool:
        """A reply that stops first response: never one the ticket's own requester wrote,
        whatever its type says (a portal that cannot tell may call every comment an agent's)."""
        by_requester = event.author is not None and event.author == self.requester_id
        return event.counts_as_response and not by_requester

    def _contexts(self, events: list[Event]) -> list[tuple[datetime, TicketFacts]]:
        """The facts the targets' conditions see, after each instant an event told some (none
        when no target has conditions). Told before the ticket's creation: told at it."""
        if self.facts is None:
            return []
        c, vocabulary = self.created, self.policy.vocabulary
        telling = [e for e in events if _tells_facts(e)]
        return [
            (
                max(at, c.occurred_at),
                vocabulary.facts(
                    customer=c.customer,
                    source=c.source,
                    group=context.group,
                    ticket_type=context.ticket_type,
                    channel=context.channel,
                    tags=context.tags or (),
                ),
            )
            for at, context in changes(telling)
        ]

    def _tell(self, until: datetime | None) -> None:
        """Take in the context told up to ``until`` (all of it if None)."""
        while self.told and (until is None or self.told[0][0] <= until):
            at, facts = self.told.popleft()
            if facts != self.facts:
                self.facts = facts
                self._move(at)

    def _move(
        self,
        at: datetime,
        *,
        status: Status | None = None,
        priority: str | None = None,
        tier: int | None = None,
    ) -> None:
        """Cut a phase at ``at`` if the state or the target in force changes (the facts the
        target is chosen by are ``self.facts``)."""
        phase = self.phases[-1]
        priority = phase.priority if priority is None else priority
        following = Phase(
            at,
            None,
            phase.status if status is None else status,
            priority,
            phase.tier if tier is None else tier,
            self.policy.choose_target(self.plan, priority, self.facts),
        )
        if (following.status, following.priority, following.tier, following.target) == (
            phase.status,
            phase.priority,
            phase.tier,
            phase.target,
        ):
            return
        if phase.resolved and not following.resolved:
            self.reopenings.append(at)
        if phase.start == at:
            self.phases[-1] = following
        else:
            self.phases[-1] = Phase(
                phase.start, at, phase.status, phase.priority, phase.tier, phase.target
            )
            self.phases.append(following)

    def _created_priority(self, created: Event) -> str:
        if created.priority is not None:
            return self._priority(created.priority, created)
        if created.urgency is not None and created.impact is not None:
            derived = self.policy.matrix_priority(created.urgency, created.impact)
            if derived is not None:
                return derived
        if self.policy.default_priority is not None:
            return self._priority(self.policy.default_priority, created)
        raise EvaluationError(
            f"event {created.event_id}: no priority, and the policy has no matrix entry or "
            "default_priority to derive one"
        )

    def _priority(self, word: str, event: Event) -> str:
        name = self.policy.priority_named(word)
        if name is None:
            known = ", ".join(self.policy.priorities)
            raise EvaluationError(
                f"event {event.event_id}: unknown priority {word!r} (known: {known})"
            )
        return name


def _tells_facts(event: Event) -> bool:
    """Whether an event tells something a target's conditions can test."""
    return (
        event.group is not None
        or event.ticket_type is not None
        or event.channel is not None
        or event.tags is not None
        or event.tags_added is not None
        or event.tags_removed is not None
    )
