"""Freshdesk's missed changes, from its REST API (v2), as the rule webhooks would have sent them.

Freshdesk gives up on a rule's webhook after its retries. ``escalera sync freshdesk`` asks the
API what changed instead:

- ``GET /api/v2/tickets?updated_since=SINCE&order_by=updated_at&order_type=asc&per_page=100
  &include=requester,stats&page=N``: every ticket changed since then, with its requester and its
  ``stats`` (the times of its last status change, resolution, closing and reopening). Freshdesk
  serves at most 300 pages a listing; past them the listing starts again from the last ticket's
  ``updated_at``.
- ``GET /api/v2/tickets/{id}/conversations``: each ticket's replies and notes, oldest first, with
  their side (``incoming``), visibility (``private``), kind (``source``) and author (``user_id``).
- ``GET /api/v2/ticket_fields``, once a run: the names of statuses, groups and agents, which the
  rule body renders (``{{ticket.status}}``, ``{{ticket.group.name}}``, ``{{ticket.agent.name}}``)
  and the settings map; ``GET /api/v2/companies/{id}``, once a company, for a new ticket's
  customer when the settings read it from the company.

For each change made in ``[since, until)`` the puller renders the body the documented rule would
have sent (docs/portals/freshdesk.md) from the ticket as the API shows it, and maps it with the
webhook adapter (`FreshdeskAdapter.mapped`): same statuses, priorities, tiers, lookups, context.

=================================  ===============================================================
what the API tells                 the change, as the rule that would have fired
=================================  ===============================================================
``created_at``                     ``{ticket_action:created}`` (the ticket's current priority,
                                   group and company: the API keeps no earlier ones)
a conversation, ``incoming``       a customer's reply (``"event": "customer_replied"``)
a public reply (not a note)        an agent's reply (``"event": "agent_replied"``); the author
                                   decides as on the webhook (the requester's own is theirs)
a note, ``private`` or not         ``{note_type:private}`` / ``{note_type:public}``
``stats.status_updated_at``        ``{status:{from:,to:CURRENT}}``: the status the ticket is in,
                                   since then; a reopening when ``stats.reopened_at`` is that
                                   same time (Freshdesk sets it when a ticket leaves Resolved or
                                   Closed); nothing when it is the creation time (no rule fires)
``stats.resolved_at`` before a     ``{status:{from:,to:4}}``: resolved then, closed later
Closed ticket's ``closed_at``
=================================  ===============================================================

Not recovered, because Freshdesk's API keeps no history of them (its ``stats`` hold the last
time of each, and Freshdesk clears ``pending_since``, ``resolved_at`` and ``closed_at`` when the
ticket leaves those statuses): every status move but the last (Pending, Open, Pending again
leaves only the last Pending), the status a move came from, priority changes, group and agent
assignments (a move to a tier-2 group), and the ticket's values when it was created. Skipped
conversations, which no documented rule reports: automations' notes, forwards, replies to a
forward (a third party's), satisfaction-survey feedback, and Freshdesk's meta and summary notes.
Each event carries the ticket's context as it is now.

Event ids: ``sync:freshdesk:<ticket>:created``, ``sync:freshdesk:<ticket>:conversation:<id>``
and ``sync:freshdesk:<ticket>:status:<time>``. A rule's webhook has no id the API knows (its id
hashes the body), so the command matches these by content; a status change's id holds its time
because Freshdesk overwrites a stat with the next change's.

A change the settings cannot map (a custom status that is not mapped) is logged and left out, as
the webhook refuses it; the rest of the ticket is still read.
"""

from __future__ import annotations

import html
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from shared import integrations
from shared.events import Event
from worker.adapters.base import Unmappable
from worker.adapters.freshdesk import PRIORITY_CODES, FreshdeskAdapter
from worker.adapters.payload import build_event
from worker.portals.access import portal_api
from worker.portals.http import PortalApi, PortalError
from worker.sync.base import Page

log = structlog.get_logger("escalera.sync")

SOURCE = "freshdesk"
TICKETS = "/api/v2/tickets"
PER_PAGE = 100  # Freshdesk's largest page
LAST_PAGE = 300  # Freshdesk answers no page past this one of a listing
# Freshdesk's ticket statuses (built-in codes) and conversation kinds (``source``: the index in
# Helpdesk::Note's sources: 0 email, 1 form, 2 note, 3 status, 4 meta, 5 twitter, 6 feedback, 7
# facebook, 8 forward_email, 9 phone, 10 mobihelp, 11 mobihelp_app_review, 12 ecommerce, 13
# summary, 14 canned_form, 15 automation_rule, 16 automation_rule_forward, 17 whatsapp).
RESOLVED, CLOSED = "4", "5"
NOTE = 2
NOT_A_REPLY = frozenset({3, 4, 6, 8, 13, 15, 16})


@dataclass(frozen=True)
class Change:
    """One change of a ticket: its key in the event id, its time, and what the rule's body says
    about it beyond the ticket (``triggered_event`` or ``event``, the performer...)."""

    key: str
    at: datetime
    says: Mapping[str, str]


@dataclass(frozen=True)
class Names:
    """The names the rule body renders where the API gives codes and ids, by code or id."""

    statuses: Mapping[str, str]
    groups: Mapping[str, str]
    agents: Mapping[str, str]

    @classmethod
    def from_fields(cls, fields: Any) -> Names:
        """From ``GET /api/v2/ticket_fields``: status choices are ``{"2": ["Open", "Being
        Processed"]}`` (the agents' name first), group and agent choices ``{name: id}``."""
        found: dict[str, dict[str, str]] = {}
        for each in fields if isinstance(fields, list) else []:
            choices = each.get("choices") if isinstance(each, Mapping) else None
            if isinstance(choices, Mapping):
                kind = str(each.get("type"))
                found[kind] = _choices(kind, choices)
        return cls(
            statuses=found.get("default_status", {}),
            groups=found.get("default_group", {}),
            agents=found.get("default_agent", {}),
        )


def _choices(kind: str, choices: Mapping[str, Any]) -> dict[str, str]:
    if kind == "default_status":
        return {
            str(code): str(names[0] if isinstance(names, list) and names else names)
            for code, names in choices.items()
        }
    # Group names come HTML-escaped (R&amp;D), as Freshdesk's own forms show them.
    return {str(ident): html.unescape(str(name)) for name, ident in choices.items()}


@dataclass
class FreshdeskPuller:
    """Pages of Freshdesk's changed tickets, each turned into the events of its changes."""

    api: PortalApi
    adapter: FreshdeskAdapter
    source: str = SOURCE
    _names: Names | None = field(default=None, init=False)
    _companies: dict[str, str | None] = field(default_factory=dict, init=False)

    def page(self, since: datetime, until: datetime, cursor: str | None) -> Page:
        path = cursor or _listing(since, 1)
        tickets = self.api.get(path)
        if not isinstance(tickets, list):
            raise PortalError("GET", TICKETS, 200, "expected a JSON list of tickets")
        events: list[Event] = []
        for ticket in tickets:
            if isinstance(ticket, Mapping) and ticket.get("id") is not None:
                events.extend(self._events(ticket, since, until))
        log.info("sync_page_read", source=SOURCE, tickets=len(tickets), events=len(events))
        return Page(events, len(tickets), _next(path, tickets))

    # --- one ticket ------------------------------------------------------------------------------

    def _events(self, ticket: Mapping[str, Any], since: datetime, until: datetime) -> list[Event]:
        ticket_id = str(ticket["id"])
        created = _time(ticket.get("created_at"), ticket_id)
        if created is not None and created >= until:
            return []  # made after the period: none of its changes are in it
        changes = [
            *_creation(ticket, created),
            *_status_changes(ticket, created, self._desk_names()),
            *self._conversations(ticket_id, until),
        ]
        wanted = sorted((c for c in changes if since <= c.at < until), key=lambda c: c.at)
        log.debug("sync_ticket_read", source=SOURCE, ticket_id=ticket_id, changes=len(wanted))
        if not wanted:
            return []
        body = self._rendered(ticket, with_company=any(c.key == "created" for c in wanted))
        return [e for c in wanted if (e := self._event(ticket_id, body, c)) is not None]

    def _event(self, ticket_id: str, body: Mapping[str, Any], change: Change) -> Event | None:
        """The change mapped as its rule's webhook is; None (logged) if the settings cannot."""
        try:
            mapped = self.adapter.mapped({**body, **change.says})
            return build_event(
                {
                    **mapped,
                    "event_id": f"sync:{SOURCE}:{ticket_id}:{change.key}",
                    "source": SOURCE,
                    "ticket_id": ticket_id,
                    "occurred_at": change.at,
                }
            )
        except Unmappable as refused:
            log.warning(
                "sync_change_unmapped",
                source=SOURCE,
                ticket_id=ticket_id,
                change=change.key,
                field=refused.field,
                reason=refused.reason,
            )
            return None

    def _conversations(self, ticket_id: str, until: datetime) -> list[Change]:
        """The ticket's replies and notes (oldest first, read up to ``until``) as changes."""
        changes: list[Change] = []
        for page in range(1, LAST_PAGE + 1):
            batch = self.api.get(
                f"{TICKETS}/{ticket_id}/conversations", {"per_page": PER_PAGE, "page": page}
            )
            batch = batch if isinstance(batch, list) else []
            changes.extend(c for each in batch if (c := _conversation(ticket_id, each)))
            if len(batch) < PER_PAGE or _after(batch[-1], until, ticket_id):
                break
        return changes

    # --- the body a rule renders -----------------------------------------------------------------

    def _rendered(self, ticket: Mapping[str, Any], *, with_company: bool) -> dict[str, Any]:
        """The documented rule body's ticket placeholders, rendered from the API's ticket."""
        names = self._desk_names()
        requester = ticket.get("requester")
        email = requester.get("email") if isinstance(requester, Mapping) else None
        body: dict[str, Any] = {
            **_custom_fields(ticket),
            "ticket_id": str(ticket["id"]),
            "status": names.statuses.get(_text(ticket.get("status")), ""),
            "priority": PRIORITY_CODES.get(_text(ticket.get("priority")), ""),
            "subject": _text(ticket.get("subject")),
            "type": _text(ticket.get("type")),
            "source_channel": _text(ticket.get("source")),
            "tags": _tags(ticket.get("tags")),
            "group": names.groups.get(_text(ticket.get("group_id")), ""),
            "agent": names.agents.get(_text(ticket.get("responder_id")), ""),
            "requester_id": _text(ticket.get("requester_id")),
            "requester_email": _text(email),
        }
        if with_company and self._reads_companies():
            body["company"] = self._company(_text(ticket.get("company_id"))) or ""
        return body

    def _desk_names(self) -> Names:
        if self._names is None:
            self._names = Names.from_fields(self.api.get("/api/v2/ticket_fields"))
        return self._names

    def _reads_companies(self) -> bool:
        return any(
            lookup is not None and lookup.source == "organization"
            for lookup in self.adapter.lookups.values()
        )

    def _company(self, company_id: str) -> str | None:
        """A company's name, asked once a run; None for none, or one Freshdesk no longer has."""
        if not company_id:
            return None
        if company_id not in self._companies:
            try:
                found = self.api.get(f"/api/v2/companies/{company_id}")
            except PortalError as exc:
                if exc.status != 404:
                    raise
                found = None
            name = found.get("name") if isinstance(found, Mapping) else None
            self._companies[company_id] = name if isinstance(name, str) else None
        return self._companies[company_id]


def make_puller(
    section: integrations.Freshdesk | None,
    environ: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> FreshdeskPuller:
    """The puller the ``freshdesk:`` settings describe: ``base_url`` and ``api_token_env``, the
    variable holding the API key of the agent Escalera reads as (Freshdesk signs in with the
    key and ``X``; ``api_user_env`` is not used)."""
    api = portal_api("freshdesk", section, environ, sleep=sleep)
    return FreshdeskPuller(api, FreshdeskAdapter.from_settings(section))


# --- the changes the API tells --------------------------------------------------------------------


def _creation(ticket: Mapping[str, Any], created: datetime | None) -> list[Change]:
    if created is None:
        return []
    performer = _text(ticket.get("requester_id"))
    return [
        Change(
            "created",
            created,
            {"triggered_event": "{ticket_action:created}", "performer_id": performer},
        )
    ]


def _status_changes(
    ticket: Mapping[str, Any], created: datetime | None, names: Names
) -> list[Change]:
    """What ``stats`` tell of the ticket's status: its last move, and a resolution before the
    ticket was closed (Freshdesk keeps ``resolved_at`` through the closing)."""
    ticket_id = str(ticket["id"])
    stats = ticket.get("stats")
    if not isinstance(stats, Mapping):
        return []
    current = _text(ticket.get("status"))
    moved = _time(stats.get("status_updated_at"), ticket_id)
    changes: list[Change] = []
    if moved is not None and moved != created and current:
        reopened = _time(stats.get("reopened_at"), ticket_id) == moved
        changes.append(_status_change(moved, RESOLVED if reopened else "", current, names))
    resolved = _time(stats.get("resolved_at"), ticket_id)
    closed = _time(stats.get("closed_at"), ticket_id)
    if current == CLOSED and resolved is not None and closed is not None and resolved < closed:
        changes.append(_status_change(resolved, "", RESOLVED, names))
    return changes


def _status_change(at: datetime, before: str, after: str, names: Names) -> Change:
    """A move to status code ``after`` (from ``before``: empty when unknown), named as the rule
    renders it then."""
    says = {
        "triggered_event": f"{{status:{{from:{before},to:{after}}}}}",
        "status": names.statuses.get(after, ""),
    }
    return Change(f"status:{at.strftime('%Y-%m-%dT%H:%M:%SZ')}", at, says)


def _conversation(ticket_id: str, each: Any) -> Change | None:
    """A reply or note as the rule that reports it would (module docstring); None for the
    conversations no documented rule reports."""
    if not isinstance(each, Mapping) or each.get("source") in NOT_A_REPLY:
        return None
    at = _time(each.get("created_at"), ticket_id)
    if at is None or each.get("id") is None:
        return None
    incoming, private = each.get("incoming") is True, each.get("private") is True
    if incoming and private:
        return None  # a third party's reply to a forward
    says: dict[str, str] = {"performer_id": _text(each.get("user_id"))}
    if private:
        says["triggered_event"] = "{note_type:private}"
    elif incoming:
        says["event"] = "customer_replied"
    elif each.get("source") == NOTE:
        says["triggered_event"] = "{note_type:public}"
    else:
        says["event"] = "agent_replied"
    return Change(f"conversation:{each['id']}", at, says)


# --- paging ---------------------------------------------------------------------------------------


def _listing(since: datetime, page: int) -> str:
    """The tickets changed since ``since``, oldest change first, page ``page``."""
    query = {
        "updated_since": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "order_by": "updated_at",
        "order_type": "asc",
        "per_page": PER_PAGE,
        "include": "requester,stats",
        "page": page,
    }
    return f"{TICKETS}?{urllib.parse.urlencode(query)}"


def _next(path: str, tickets: list[Any]) -> str | None:
    """The page after ``path``: None after a short page; after Freshdesk's last page, the
    listing again from the last ticket's ``updated_at`` (tickets read twice map to the same
    events, which the command drops)."""
    if len(tickets) < PER_PAGE:
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    since = datetime.fromisoformat(query["updated_since"][0])
    page = int(query["page"][0])
    if page < LAST_PAGE:
        return _listing(since, page + 1)
    last = tickets[-1]
    updated = _time(last.get("updated_at") if isinstance(last, Mapping) else None, "")
    if updated is None or updated <= since:
        # 30,000 tickets changed in one second: move on rather than read them for ever
        updated = since + timedelta(seconds=1)
        log.warning("sync_listing_stuck", source=SOURCE, updated_since=since.isoformat())
    return _listing(updated, 1)


# --- reading the API's values -------------------------------------------------------------------


def _time(value: Any, ticket_id: str) -> datetime | None:
    """An API time (``2026-12-01T08:12:40Z``) in UTC; None if absent or unreadable (logged)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        log.warning("sync_time_unread", source=SOURCE, ticket_id=ticket_id, value=value)
        return None
    return parsed.astimezone(UTC)


def _after(conversation: Any, until: datetime, ticket_id: str) -> bool:
    """Whether a conversation was written at or after ``until`` (the later ones are too)."""
    at = (
        _time(conversation.get("created_at"), ticket_id)
        if isinstance(conversation, Mapping)
        else None
    )
    return at is not None and at >= until


def _text(value: Any) -> str:
    """An id, code or name as the rule renders it: text, empty for none."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)


def _tags(value: Any) -> list[str]:
    """The ticket's tags (``{{ticket.tags}}`` renders them all; none is an empty list)."""
    return [tag for tag in value if isinstance(tag, str)] if isinstance(value, list) else []


def _custom_fields(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket's custom fields by API name (``cf_plan``): a body key of that name carries
    ``{{ticket.cf_plan}}`` for a ``from: field`` lookup."""
    fields = ticket.get("custom_fields")
    if not isinstance(fields, Mapping):
        return {}
    return {str(k): v for k, v in fields.items() if isinstance(v, str | int)}
