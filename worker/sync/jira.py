"""Jira Cloud's missed changes, pulled: issues found by JQL, with their changelog and comments.

What the puller asks Jira Cloud's REST API (v3), with the API user's e-mail and token:

=============================================  ===================================================
``GET /rest/api/3/myself``                     once: the API user's time zone, which JQL reads
                                               times in (unknown: UTC-12, which starts no later)
``GET /rest/api/3/search/jql``                 ``updated >= "<since>" ORDER BY updated ASC``,
                                               ``expand=changelog``, the fields the events read;
                                               one page per `JiraPuller.page`, the next page's
                                               ``nextPageToken`` its cursor
``GET /rest/api/3/issue/{key}/changelog``      the whole history, by ``startAt``, when the search's
                                               is cut (it holds the most recent entries only)
``GET /rest/api/3/issue/{key}/comment``        ``orderBy=-created``, newest first, until a page
                                               reaches comments older than ``since``
``GET /rest/api/3/status``                     once, and only for a status no setting maps: its
                                               category (a *Done* one is solved)
=============================================  ===================================================

Each change made in ``[since, until)`` becomes the webhook body Jira would have delivered for it,
and `JiraAdapter.events_of` maps that body, so a pulled change maps exactly like its webhook
(statuses, priorities, tiers, context) and keeps its id: the issue's creation
(``issue:<id>:created``), each changelog entry (``changelog:<id>:<item>`` or
``changelog:<id>:updated``) and each new comment (``comment:<id>``). A change the worker already
has is then known by its id. The issue in each body is the issue as it was just after that change:
the issue as it is now, with the later changelog entries undone (their ``from``/``fromString``).
The customer, plan and time zone read from custom fields are taken as they are now.

A comment is mapped with the whole issue, reporter included (as in Jira's ``jira:issue_updated``
of a comment): the requester's own comment is ``customer_replied`` at once. A change that cannot
be mapped (a status no setting knows) is logged and skipped, never stopping the pull.
"""

from __future__ import annotations

import time
import urllib.parse
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from shared import integrations
from shared.events import Event
from shared.names import fold
from worker.adapters.base import Unmappable
from worker.adapters.jira import JiraAdapter
from worker.adapters.payload import iso_time, text_at
from worker.portals.access import portal_api
from worker.portals.http import PortalApi, PortalError
from worker.sync.base import Page

log = structlog.get_logger("escalera.sync")

SOURCE = "jira"
SEARCH = "/rest/api/3/search/jql"
PAGE_SIZE = 50  # issues per search page (Jira's default; fewer when it finds them heavy)
HISTORY_PAGE = COMMENT_PAGE = 100  # the endpoints' default page size
FIELDS = ("summary", "status", "priority", "issuetype", "labels", "assignee", "reporter", "created")
WIDEST_ZONE = "Etc/GMT+12"  # UTC-12: a JQL time read in any real zone is no later than in it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAMED = ("status", "priority", "issuetype")  # fields whose value is {id, name}
_PEOPLE = ("assignee", "reporter")

Fields = dict[str, Any]
Change = tuple[datetime, Fields]  # when, and the webhook body Jira would have sent


def make_puller(
    section: integrations.Jira | None,
    environ: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> JiraPuller:
    """The puller the ``jira:`` settings describe: the site at ``base_url``, signed in with the
    e-mail in ``api_user_env`` and the API token in ``api_token_env``."""
    api = portal_api("jira", section, environ, sleep=sleep)
    scope = section.sync_jql if section is not None else None
    return JiraPuller(api, JiraAdapter.from_settings(section), scope)


class JiraPuller:
    """One Jira Cloud site's changes as canonical events (`worker.sync.base.Puller`).

    ``scope`` narrows the search with JQL (``project in (IT, HR)``); without it, every issue the
    API user may browse is read."""

    source: str = SOURCE

    def __init__(self, api: PortalApi, adapter: JiraAdapter, scope: str | None = None) -> None:
        self.api = api
        self.adapter = adapter
        self.scope = scope
        self._zone: zoneinfo.ZoneInfo | None = None
        self._categories: dict[str, str] | None = None

    def page(self, since: datetime, until: datetime, cursor: str | None) -> Page:
        """The events of the issues on one search page, in the order they happened."""
        found = _mapping(self.api.get(SEARCH, self._search(since, cursor)), SEARCH)
        issues = [issue for issue in _list(found.get("issues")) if isinstance(issue, Mapping)]
        events = [event for issue in issues for event in self._events(issue, since, until)]
        events.sort(key=lambda event: event.occurred_at)
        token = None if found.get("isLast") is True else text_at(found, "nextPageToken")
        log.info("sync_page", source=SOURCE, tickets=len(issues), events=len(events))
        return Page(events, len(issues), token)

    # --- what is asked ------------------------------------------------------------------------

    def _search(self, since: datetime, cursor: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "jql": self.jql(since),
            "fields": ",".join([*FIELDS, *self.adapter.custom_fields()]),
            "expand": "changelog",
            "maxResults": PAGE_SIZE,
        }
        if cursor:
            params["nextPageToken"] = cursor
        return params

    def jql(self, since: datetime) -> str:
        """The search: issues updated since ``since``, a time JQL takes to the minute in the
        API user's time zone (rounded down: the changes before ``since`` are left out later)."""
        local = since.astimezone(self._user_zone()).strftime("%Y-%m-%d %H:%M")
        clause = f'updated >= "{local}" ORDER BY updated ASC'
        return f"({self.scope}) AND {clause}" if self.scope else clause

    def _user_zone(self) -> zoneinfo.ZoneInfo:
        if self._zone is None:
            me = _mapping(self.api.get("/rest/api/3/myself"), "/rest/api/3/myself")
            self._zone = _zone(text_at(me, "timeZone"))
        return self._zone

    def _histories(self, issue: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The issue's whole changelog: the search's, unless it is cut."""
        found = issue.get("changelog")
        changelog: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        histories = _list(changelog.get("histories"))
        total = changelog.get("total")
        if isinstance(total, int) and total > len(histories):
            histories = list(self._every_history(_key(issue)))
        return [history for history in histories if isinstance(history, Mapping)]

    def _every_history(self, key: str) -> Iterator[Any]:
        path = f"/rest/api/3/issue/{urllib.parse.quote(key)}/changelog"
        start = 0
        while True:
            page = _mapping(
                self.api.get(path, {"startAt": start, "maxResults": HISTORY_PAGE}), path
            )
            values = _list(page.get("values"))
            yield from values
            start += len(values)
            if not values or page.get("isLast") is True or start >= _int(page.get("total"), start):
                return

    def _comments(self, key: str, since: datetime) -> Iterator[Mapping[str, Any]]:
        """The issue's comments, newest first, down to the first page reaching before ``since``."""
        path = f"/rest/api/3/issue/{urllib.parse.quote(key)}/comment"
        start = 0
        while True:
            params = {"orderBy": "-created", "startAt": start, "maxResults": COMMENT_PAGE}
            page = _mapping(self.api.get(path, params), path)
            comments = [c for c in _list(page.get("comments")) if isinstance(c, Mapping)]
            yield from comments
            start += len(comments)
            oldest = _time(comments[-1], "created") if comments else None
            if not comments or start >= _int(page.get("total"), start):
                return
            if oldest is not None and oldest < since:
                return

    def _category(self, name: str | None, ident: str | None) -> str | None:
        """A status's category key (``new``, ``indeterminate``, ``done``), from Jira's list."""
        if self._categories is None:
            self._categories = _categories(_list(self.api.get("/rest/api/3/status")))
        found = (self._categories.get(fold(k)) for k in (ident, name) if k)
        return next((category for category in found if category), None)

    # --- what changed -------------------------------------------------------------------------

    def _events(self, issue: Mapping[str, Any], since: datetime, until: datetime) -> list[Event]:
        key = _key(issue)
        events: list[Event] = []
        for at, body in self._changes(issue, since):
            if not since <= at < until:
                continue
            try:
                events += self.adapter.events_of(body, f"sync:jira:{key}")
            except Unmappable as refused:
                log.warning(
                    "sync_change_unmappable",
                    source=SOURCE,
                    ticket_id=key,
                    change=_change_name(body),
                    reason=str(refused),
                )
        log.debug("sync_ticket", source=SOURCE, ticket_id=key, events=len(events))
        return events

    def _changes(self, issue: Mapping[str, Any], since: datetime) -> Iterator[Change]:
        """Every change of the issue, with the body its webhook would have had."""
        timeline = _Timeline(issue, self._histories(issue), self.adapter.group_field)
        created = _time(_mapping(issue.get("fields"), "fields"), "created")
        if created is not None:
            yield created, self._body(issue, timeline.at_creation, "jira:issue_created", created)
        for at, history, after in timeline.entries:
            changelog = {"id": history.get("id"), "items": _list(history.get("items"))}
            body = self._body(issue, after, "jira:issue_updated", at, changelog=changelog)
            yield at, body
        for comment in self._comments(_key(issue), since):
            if (said := _time(comment, "created")) is not None:
                fields = timeline.as_of(said)
                yield said, self._body(issue, fields, "comment_created", said, comment=comment)

    def _body(
        self, issue: Mapping[str, Any], fields: Fields, kind: str, at: datetime, **parts: Any
    ) -> Fields:
        """The webhook body of a change: its kind, time, the issue as it then was, its parts."""
        shown = {
            "id": issue.get("id"),
            "key": issue.get("key"),
            "fields": self._categorised(fields),
        }
        stamp = (at - _EPOCH) // timedelta(milliseconds=1)
        return {"webhookEvent": kind, "timestamp": stamp, "issue": shown, **parts}

    def _categorised(self, fields: Fields) -> Fields:
        """The fields with their status's category when only the category can map it (the
        status a change undid is a bare id and name)."""
        status = fields.get("status")
        if not isinstance(status, Mapping) or isinstance(status.get("statusCategory"), Mapping):
            return fields
        name, ident = text_at(status, "name"), text_at(status, "id")
        if self.adapter.status_of(name, ident) is not None:
            return fields
        category = self._category(name, ident)
        if category is None:
            return fields
        return {**fields, "status": {**status, "statusCategory": {"key": category}}}


class _Timeline:
    """An issue's fields at its creation and just after each changelog entry, oldest first."""

    def __init__(
        self, issue: Mapping[str, Any], histories: list[Mapping[str, Any]], group: str | None
    ) -> None:
        self.group_field = group
        dated = [(at, h) for h in histories if (at := _time(h, "created")) is not None]
        dated = [(at, h) for at, h in dated if not _is_creation_record(h)]
        dated.sort(key=lambda entry: (entry[0], _int(entry[1].get("id"), 0)))
        state: Fields = dict(_mapping(issue.get("fields"), "fields"))
        after: list[Fields] = []
        for _, history in reversed(dated):
            after.append(state)
            state = self._undo(state, history)
        self.at_creation = state
        self.entries = [
            (at, history, fields)
            for (at, history), fields in zip(dated, reversed(after), strict=True)
        ]

    def as_of(self, at: datetime) -> Fields:
        """The fields at ``at``: after the last entry made then or before."""
        passed = [fields for when, _, fields in self.entries if when <= at]
        return passed[-1] if passed else self.at_creation

    def _undo(self, fields: Fields, history: Mapping[str, Any]) -> Fields:
        """The fields before ``history``: each item's field back to its ``from`` value."""
        before = dict(fields)
        for item in reversed(_list(history.get("items"))):
            if isinstance(item, Mapping):
                before.update(self._before(item, before))
        return before

    def _before(self, item: Mapping[str, Any], after: Fields) -> Fields:
        """The value an item's field had before it, as the issue's ``fields`` hold it; nothing
        for a field no event reads."""
        field = _field(item)
        old, shown = text_at(item, "from"), item.get("fromString")
        if field in _NAMED:
            return {field: {"id": old, "name": shown} if old or shown else None}
        if field in _PEOPLE:
            account = text_at(item, "tmpFromAccountId") or old
            return {field: {"accountId": account, "displayName": shown} if account else None}
        if field == "summary":
            return {field: shown}
        if field == "labels":
            return {field: _labels_before(_list(after.get(field)), str(shown or "").split())}
        if self.group_field is not None and text_at(item, "fieldId") == self.group_field:
            return {self.group_field: {"id": old, "name": shown} if old or shown else None}
        return {}


def _categories(statuses: list[Any]) -> dict[str, str]:
    """Each status's category key, by its folded id and name."""
    categories: dict[str, str] = {}
    for status in (s for s in statuses if isinstance(s, Mapping)):
        category = text_at(status, "statusCategory.key")
        named = (text_at(status, "id"), text_at(status, "name"))
        categories.update({fold(n): category for n in named if n and category})
    return categories


def _labels_before(after: list[Any], before: list[str]) -> list[str]:
    """The labels before a change, in the issue's own order (a changelog sorts them)."""
    kept = [label for label in after if label in before]
    return kept + [label for label in before if label not in kept]


def _is_creation_record(history: Mapping[str, Any]) -> bool:
    """The creation's own changelog (Jira Cloud's ``jira:issue_created`` delivery carries one):
    it sets the status from nothing, which no later change can do."""
    items = [item for item in _list(history.get("items")) if isinstance(item, Mapping)]
    return any(
        _field(item) == "status" and not text_at(item, "from") and not text_at(item, "fromString")
        for item in items
    )


def _field(item: Mapping[str, Any]) -> str:
    """Which field an item changed: its ``fieldId``, else its (maybe translated) ``field``."""
    return fold(text_at(item, "fieldId") or text_at(item, "field") or "")


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The API user's time zone; the widest one when Jira does not say or says an unknown one."""
    try:
        return zoneinfo.ZoneInfo(name or WIDEST_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("sync_timezone_unknown", source=SOURCE, timezone=name)
        return zoneinfo.ZoneInfo(WIDEST_ZONE)


def _time(body: Mapping[str, Any], path: str) -> datetime | None:
    """A Jira time (``2025-03-04T09:02:11.402+0100``) in UTC; None when absent or unreadable."""
    value = text_at(body, path)
    if value is None:
        return None
    try:
        return iso_time(value, path)
    except Unmappable:
        log.warning("sync_time_unreadable", source=SOURCE, field=path, value=value[:40])
        return None


def _change_name(body: Mapping[str, Any]) -> str:
    for path in ("changelog.id", "comment.id"):
        if (ident := text_at(body, path)) is not None:
            return f"{path.split('.')[0]}:{ident}"
    return f"issue:{text_at(body, 'issue.id')}:created"


def _key(issue: Mapping[str, Any]) -> str:
    key = text_at(issue, "key") or text_at(issue, "id")
    if key is None:
        raise PortalError("GET", SEARCH, 200, "an issue without a key")
    return key


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PortalError("GET", where, 200, "not a JSON object")
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default
