"""Delivering notifications through Apprise, in batches, recording each target's result.

A batch is one transaction: its notifications are locked (a redelivered or concurrent batch
waits, then finds them sent), other pending notifications of the same channels are swept in
(``SKIP LOCKED``: never waited for), a storm on a channel becomes digests (`worker.notify.storm`),
and the messages go out on a bounded thread pool. Each notification keeps its own attempts,
per-target results, backoff, dead-letter and fallback, exactly as when sent alone.

At-least-once: a read time-out may hide a delivery that happened, so every message carries its
dedupe key (in the text, and as ``X-Escalera-Dedupe-Key`` on JSON webhooks) for the receiving
end to drop repeats; our side never resends to a target that already accepted it. A channel's
URLs come from ``ESCALERA_CHANNEL_<NAME>`` (several separated by spaces or commas) and are never
logged: only their scheme is.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import apprise
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, StoredEvent, Ticket
from shared.db.statements import among
from shared.policy_routes import RouteSpec, channel_env
from worker.notify import console  # noqa: F401 - registers the console:// channel with Apprise
from worker.notify.batch_rows import Note, existing, lock_notes, sweep_notes, write_back
from worker.notify.messages import Message, MessageFacts, render, render_digest
from worker.notify.outbox import write_notification
from worker.notify.paging import ack_signature, next_repeat
from worker.notify.storm import Pending, Send, StormSettings, plan_sends
from worker.policies import LoadedPolicy, PolicyBook

_SPLIT = re.compile(r"[\s,]+")
MAX_BACKOFF_S = 300
SEND_THREADS = 8  # Apprise calls in flight at once per worker process
SWEEP_MAX = 1000  # other pending notifications of a channel one batch may take along
SWEEP_WINDOW = 5000  # … from ids this close to the batch's (a primary-key range scan)


# What a message needs of its checkpoint and ticket, read as plain columns.
_CHECKPOINT_COLUMNS = (
    Checkpoint.id,
    Checkpoint.ticket_pk,
    Checkpoint.key,
    Checkpoint.kind,
    Checkpoint.metric,
    Checkpoint.percent,
    Checkpoint.tier,
    Checkpoint.due_at,
)
_TICKET_COLUMNS = (
    Ticket.ticket_id,
    Ticket.source,
    Ticket.policy,
    Ticket.plan,
    Ticket.priority,
)


class Delivery(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # some targets failed: try those again later
    DEAD = "dead"  # out of attempts, or the channel is not configured
    BUSY = "busy"  # another batch holds it (it swept it in): look again in a moment


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    retry_in_s: float | None = None
    error: str | None = None
    repeat_at: datetime | None = None  # an unacknowledged page repeats then
    fallback_id: int | None = None  # the notification written to the route's fallback channel


class Sender(Protocol):
    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        """Send to each URL; per URL, None if delivered, else the reason it failed."""


class AppriseSender:
    """Each target on its own Apprise object, so each result is known (Apprise 2.x results)."""

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        return [self._one(url, message, dedupe_key) for url in urls]

    def _one(self, url: str, message: Message, dedupe_key: str) -> str | None:
        target = apprise.Apprise()
        if not target.add(_with_dedupe_header(url, dedupe_key)):
            return f"not an Apprise URL ({scheme(url)}://…)"
        # plain text: e-mail keeps its line breaks (left unsaid, Apprise would send the text as
        # HTML, and every line of the message would run into one)
        result = target.notify(
            title=message.title, body=message.body, body_format=apprise.NotifyFormat.TEXT
        )
        if result.status == apprise.AppriseResultStatus.SUCCESS:
            return None
        return f"{scheme(url)}: {result.status.name.lower()}"


def warm_apprise() -> None:
    """Load Apprise's plugins now (0.7 s of CPU, seconds on a busy machine): in the worker's
    parent before it forks, so no child pays for it on the first page it sends."""
    apprise.Apprise().add("json://127.0.0.1/warm-up")


def scheme(url: str) -> str:
    """What may be logged of a channel URL: its scheme only, never host, path or key."""
    return url.split("://", 1)[0] if "://" in url else "?"


def channel_urls(channel: str, environ: Mapping[str, str]) -> list[str]:
    return [url for url in _SPLIT.split(environ.get(channel_env(channel), "")) if url]


def _with_dedupe_header(url: str, key: str) -> str:
    if scheme(url) not in ("json", "jsons"):
        return url
    return f"{url}{'&' if '?' in url else '?'}+X-Escalera-Dedupe-Key={quote(key)}"


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Exponential with jitter: ~2, 4, 8 … seconds, at most five minutes."""
    return float(min(MAX_BACKOFF_S, 2**attempt) * rng.uniform(0.5, 1.5))


@dataclass(frozen=True)
class _Row:
    """A notification with what sending it needs."""

    notification: Note
    route: RouteSpec | None
    language: str
    urls: list[str]
    facts: MessageFacts


@dataclass(frozen=True)
class Deliverer:
    policies: PolicyBook
    sender: Sender
    environ: Mapping[str, str]
    rng: random.Random = field(default_factory=random.Random)
    ack_links: tuple[str, str] | None = None  # (public URL, signing secret)
    storm: StormSettings | None = None  # None: from the environment

    def deliver(self, session: Session, notification_id: int, now: datetime) -> Outcome:
        """Try one notification's pending targets once (the caller commits)."""
        return self.deliver_many(session, [notification_id], now, sweep=False)[notification_id]

    def deliver_many(
        self, session: Session, ids: Sequence[int], now: datetime, *, sweep: bool = True
    ) -> dict[int, Outcome]:
        """Try the pending targets of ``ids`` once (with ``sweep``, also other pending
        notifications of a channel in a storm); each one's outcome (the caller commits)."""
        storm = self.storm or StormSettings.from_environ(self.environ)
        # SKIP LOCKED: a row another batch holds is being sent by it; waiting for it would tie
        # up this worker for that batch's whole send, so it is handed back to look at later.
        locked = lock_notes(session, ids)
        outcomes = {nid: Outcome(Delivery.BUSY) for nid in ids}
        live = []
        for note in locked:
            if note.status in (Delivery.SENT.value, Delivery.DEAD.value):
                outcomes[note.id] = Outcome(Delivery(note.status))
            else:
                live.append(note)
        if len(locked) < len(ids):  # held elsewhere (busy), or no such notification (dead)
            held = {n.id for n in locked}
            found = existing(session, (nid for nid in ids if nid not in held))
            outcomes.update({nid: Outcome(Delivery.DEAD) for nid in ids if nid not in held | found})
        if sweep and storm.enabled:  # a channel in a storm takes more along; a lone page does not
            per_channel = Counter(n.channel for n in live)
            for channel in sorted(c for c, n in per_channel.items() if n >= storm.threshold):
                live += sweep_notes(session, channel, ids, SWEEP_WINDOW, SWEEP_MAX)
        rows = self._rows(session, live, now)
        sendable = []
        for row in rows:
            if row.urls:
                sendable.append(row)
                continue
            error = f"{channel_env(row.notification.channel)} is not set"
            outcomes[row.notification.id] = self._dead(
                session, row.notification, row.route, error, now
            )
        outcomes.update(self._send_all(session, sendable, storm, now))
        write_back(session, live)
        return outcomes

    def _send_all(
        self, session: Session, rows: Sequence[_Row], storm: StormSettings, now: datetime
    ) -> dict[int, Outcome]:
        by_id = {row.notification.id: row for row in rows}
        pending = [
            Pending(row.notification.id, row.notification.channel, row.language, _todo(row))
            for row in rows
        ]
        sends = plan_sends(pending, storm)
        jobs = [(send, target) for send in sends for target in send.targets]
        messages = {send: self._message(send, by_id, now) for send in sends}

        def one(job: tuple[Send, int]) -> str | None:
            send, target = job
            url = by_id[send.ids[0]].urls[target]
            message, key = messages[send]
            try:
                return self.sender.send([url], message, key)[0]
            except Exception as exc:  # a plugin's bug fails this target, not the whole batch
                return f"{scheme(url)}: {type(exc).__name__}"  # its text could hold the URL

        # a lone page is sent right here: no hand-off to a thread
        errors = list(_pool().map(one, jobs)) if len(jobs) > 1 else [one(job) for job in jobs]
        results: dict[Send, dict[int, str | None]] = {send: {} for send in sends}
        for (send, target), error in zip(jobs, errors, strict=True):
            results[send][target] = error
        outcomes = {}
        for send in sends:
            for nid in send.ids:
                outcomes[nid] = self._record(session, by_id[nid], results[send], now)
        return outcomes

    def _message(self, send: Send, by_id: dict[int, _Row], now: datetime) -> tuple[Message, str]:
        """The message and the dedupe key its header carries (a digest's names its range)."""
        rows = [by_id[nid] for nid in send.ids]
        if not send.digest:
            return render(send.language, rows[0].facts, now), rows[0].notification.dedupe_key
        key = f"digest:{send.channel}:{send.ids[0]}-{send.ids[-1]}:{len(send.ids)}"
        return render_digest(send.language, [row.facts for row in rows], now), key

    def _record(
        self, session: Session, row: _Row, errors: dict[int, str | None], now: datetime
    ) -> Outcome:
        """One notification's results of this try: sent, retry the failed targets, or dead."""
        notification, route = row.notification, row.route
        notification.changed = True
        notification.results = {
            **(notification.results or {}),
            **{str(i): err is None for i, err in errors.items()},
        }
        notification.attempts += 1
        failures = [err for _, err in sorted(errors.items()) if err is not None]
        if not failures:
            notification.status, notification.delivered_at, notification.last_error = (
                Delivery.SENT.value,
                now,
                None,
            )
            return Outcome(Delivery.SENT, repeat_at=next_repeat(route, notification, now))
        notification.last_error = "; ".join(failures)
        if route is None or notification.attempts >= route.attempts:
            return self._dead(session, notification, route, notification.last_error, now)
        notification.status = "retrying"
        return Outcome(
            Delivery.RETRY, backoff_s(notification.attempts, self.rng), notification.last_error
        )

    def _dead(
        self,
        session: Session,
        notification: Note,
        route: RouteSpec | None,
        error: str,
        now: datetime,
    ) -> Outcome:
        """Give up on this channel; tell the route's fallback channel instead, once."""
        notification.status, notification.last_error = Delivery.DEAD.value, error
        notification.changed = True
        fallback_id = None
        if route is not None and route.fallback and route.fallback != notification.channel:
            fallback_id = write_notification(
                session,
                checkpoint_id=notification.checkpoint_id,
                route=route.name,
                channel=route.fallback,
                repeat=notification.repeat,
                now=now,
                fallback=True,
            )
        return Outcome(Delivery.DEAD, error=error, fallback_id=fallback_id)

    def _rows(self, session: Session, live: Sequence[Note], now: datetime) -> list[_Row]:
        """Each notification with its route, URLs and message facts (three queries in all)."""
        if not live:
            return []
        # Plain columns, not ORM objects: a ticket's row also holds its whole SLA snapshot.
        found = {
            int(row.id): row
            for row in session.execute(
                select(*_CHECKPOINT_COLUMNS, *_TICKET_COLUMNS)
                .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
                .where(among(session, Checkpoint.id, sorted({n.checkpoint_id for n in live})))
            ).all()
        }
        ticket_pks = sorted({row.ticket_pk for row in found.values()})
        created: dict[int, dict[str, Any]] = {}
        for ticket_pk, customer, customer_tz in session.execute(
            select(
                StoredEvent.ticket_pk,
                StoredEvent.payload["customer"].as_string(),
                StoredEvent.payload["customer_timezone"].as_string(),
            )
            .where(among(session, StoredEvent.ticket_pk, ticket_pks), StoredEvent.type == "created")
            .order_by(StoredEvent.id)
        ).all():
            created.setdefault(ticket_pk, {"customer": customer, "customer_timezone": customer_tz})
        breaches = _breaches(session, ticket_pks)
        rows = []
        routes: dict[tuple[str, str], RouteSpec | None] = {}
        urls: dict[str, list[str]] = {}
        zones: dict[tuple[Any, ...], ZoneInfo] = {}
        for notification in live:
            row = found[notification.checkpoint_id]
            loaded = self.policies.named(row.policy)
            key = (row.policy, notification.route)
            if key not in routes:
                routes[key] = next(
                    (r for r in loaded.policy.routes if r.name == notification.route), None
                )
            if notification.channel not in urls:
                urls[notification.channel] = channel_urls(notification.channel, self.environ)
            facts = self._facts(
                notification,
                row,
                loaded,
                created.get(row.ticket_pk) or {},
                zones,
                _deadline(row, breaches),
            )
            rows.append(
                _Row(
                    notification,
                    routes[key],
                    loaded.policy.language,
                    urls[notification.channel],
                    facts,
                )
            )
        return rows

    def _facts(  # noqa: PLR0917 - one row's parts, passed as they are at hand
        self,
        notification: Note,
        row: Any,  # of _CHECKPOINT_COLUMNS and _TICKET_COLUMNS
        loaded: LoadedPolicy,
        created: dict[str, Any],
        zones: dict[tuple[Any, ...], ZoneInfo],
        due_at: datetime,
    ) -> MessageFacts:
        customer, customer_tz = created.get("customer"), created.get("customer_timezone")
        zone_key = (row.policy, row.plan, customer, customer_tz)
        if zone_key not in zones:  # a storm is many tickets of few customers: look up once
            zone_name = loaded.policy.timezone_for(customer, customer_tz)
            plan = loaded.policy.plans[row.plan or loaded.policy.default_plan]
            zones[zone_key] = loaded.calendars.get(plan.calendar, zone_name).tz
        link = loaded.policy.ticket_links.get(row.source)
        return MessageFacts(
            ticket_id=row.ticket_id,
            source=row.source,
            customer=customer,
            priority=row.priority or "",
            plan=row.plan or "",
            kind=row.kind,
            metric=row.metric,
            percent=row.percent,
            tier=row.tier,
            due_at=due_at,
            tz=zones[zone_key],
            link=link.format(ticket_id=row.ticket_id) if link else None,
            dedupe_key=notification.dedupe_key,
            ack_link=self._ack_link(notification.id),
        )

    def _ack_link(self, notification_id: int) -> str | None:
        if self.ack_links is None:
            return None
        base, secret = self.ack_links
        signature = ack_signature(secret, notification_id)
        return f"{base.rstrip('/')}/v1/notifications/{notification_id}/ack?sig={signature}"


def _breaches(session: Session, ticket_pks: list[int]) -> dict[tuple[int, str], datetime]:
    """Each clock's breach instant, by (ticket, clock): what a warning's message is about."""
    query = select(Checkpoint.ticket_pk, Checkpoint.key, Checkpoint.due_at).where(
        among(session, Checkpoint.ticket_pk, ticket_pks), Checkpoint.key.like("%:breach")
    )
    return {(pk, key.split(":", 1)[0]): due for pk, key, due in session.execute(query).all()}


def _deadline(checkpoint: Any, breaches: dict[tuple[int, str], datetime]) -> datetime:
    """The instant the message is about: a warning or a reminder is about its clock's breach
    (the 75 % mark is not the deadline), a breach or an escalation about its own instant."""
    own: datetime = checkpoint.due_at
    if checkpoint.kind not in ("warning", "reminder"):
        return own
    clock = checkpoint.key.split(":", 1)[0]  # first_response, update#2, resolution
    return breaches.get((checkpoint.ticket_pk, clock), own)


def _todo(row: _Row) -> tuple[int, ...]:
    """The targets of the channel that have not accepted this notification yet."""
    done = row.notification.results or {}
    return tuple(i for i in range(len(row.urls)) if not done.get(str(i)))


@cache
def _pool() -> ThreadPoolExecutor:
    """The process's sending threads (made on first use: after Celery's fork, not before)."""
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="escalera-send")
