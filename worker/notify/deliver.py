"""Delivering one notification to one channel through Apprise, recording each target's result.

At-least-once: a read time-out may hide a delivery that happened, so every message carries its
dedupe key (in the text, and as ``X-Escalera-Dedupe-Key`` on JSON webhooks) for the receiving
end to drop repeats; our side never resends to a target that already accepted it. A channel's
URLs come from ``ESCALERA_CHANNEL_<NAME>`` (several separated by spaces or commas) and are never
logged: only their scheme is.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import quote

import apprise
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, Notification, StoredEvent, Ticket
from shared.policy_routes import RouteSpec, channel_env
from worker.notify import console  # noqa: F401 - registers the console:// channel with Apprise
from worker.notify.messages import Message, MessageFacts, render
from worker.notify.outbox import write_notification
from worker.notify.paging import ack_signature, next_repeat
from worker.policies import LoadedPolicy, PolicyBook

_SPLIT = re.compile(r"[\s,]+")
MAX_BACKOFF_S = 300


class Delivery(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # some targets failed: try those again later
    DEAD = "dead"  # out of attempts, or the channel is not configured


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
class Deliverer:
    policies: PolicyBook
    sender: Sender
    environ: Mapping[str, str]
    rng: random.Random = field(default_factory=random.Random)
    ack_links: tuple[str, str] | None = None  # (public URL, signing secret)

    def deliver(self, session: Session, notification_id: int, now: datetime) -> Outcome:
        """Try the notification's pending targets once (the caller commits)."""
        notification = session.get(Notification, notification_id, with_for_update=True)
        if notification is None or notification.status in (
            Delivery.SENT.value,
            Delivery.DEAD.value,
        ):
            return Outcome(Delivery(notification.status) if notification else Delivery.DEAD)
        checkpoint = session.get_one(Checkpoint, notification.checkpoint_id)
        ticket = session.get_one(Ticket, checkpoint.ticket_pk)
        loaded = self.policies.named(ticket.policy)
        route = next((r for r in loaded.policy.routes if r.name == notification.route), None)
        urls = channel_urls(notification.channel, self.environ)
        if not urls:
            return self._dead(
                session, notification, route, f"{channel_env(notification.channel)} is not set", now
            )
        done = notification.results or {}
        pending = [i for i in range(len(urls)) if not done.get(str(i))]
        facts = self._facts(session, notification, checkpoint, ticket, loaded)
        errors = self.sender.send(
            [urls[i] for i in pending],
            render(loaded.policy.language, facts, now),
            notification.dedupe_key,
        )
        notification.results = {
            **done,
            **{str(i): err is None for i, err in zip(pending, errors, strict=True)},
        }
        notification.attempts += 1
        failures = [err for err in errors if err is not None]
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
        notification: Notification,
        route: RouteSpec | None,
        error: str,
        now: datetime,
    ) -> Outcome:
        """Give up on this channel; tell the route's fallback channel instead, once."""
        notification.status, notification.last_error = Delivery.DEAD.value, error
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

    def _facts(
        self,
        session: Session,
        notification: Notification,
        checkpoint: Checkpoint,
        ticket: Ticket,
        loaded: LoadedPolicy,
    ) -> MessageFacts:
        created = (
            session.scalars(
                select(StoredEvent.payload).where(
                    StoredEvent.ticket_pk == ticket.id, StoredEvent.type == "created"
                )
            ).first()
            or {}
        )
        zone_name = loaded.policy.timezone_for(
            created.get("customer"), created.get("customer_timezone")
        )
        plan_calendar = loaded.policy.plans[ticket.plan or loaded.policy.default_plan].calendar
        link = loaded.policy.ticket_links.get(ticket.source)
        return MessageFacts(
            ticket_id=ticket.ticket_id,
            source=ticket.source,
            customer=created.get("customer"),
            priority=ticket.priority or "",
            plan=ticket.plan or "",
            kind=checkpoint.kind,
            metric=checkpoint.metric,
            percent=checkpoint.percent,
            tier=checkpoint.tier,
            due_at=_deadline(session, checkpoint),
            tz=loaded.calendars.get(plan_calendar, zone_name).tz,
            link=link.format(ticket_id=ticket.ticket_id) if link else None,
            dedupe_key=notification.dedupe_key,
            ack_link=self._ack_link(notification.id),
        )

    def _ack_link(self, notification_id: int) -> str | None:
        if self.ack_links is None:
            return None
        base, secret = self.ack_links
        signature = ack_signature(secret, notification_id)
        return f"{base.rstrip('/')}/v1/notifications/{notification_id}/ack?sig={signature}"


def _deadline(session: Session, checkpoint: Checkpoint) -> datetime:
    """The instant the message is about: a warning or a reminder is about its clock's breach
    (the 75 % mark is not the deadline), a breach or an escalation about its own instant."""
    if checkpoint.kind not in ("warning", "reminder"):
        return checkpoint.due_at
    clock = checkpoint.key.split(":", 1)[0]  # first_response, update#2, resolution
    breach = session.scalars(
        select(Checkpoint.due_at).where(
            Checkpoint.ticket_pk == checkpoint.ticket_pk, Checkpoint.key == f"{clock}:breach"
        )
    ).first()
    return breach or checkpoint.due_at
