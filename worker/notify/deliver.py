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

import hashlib
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import apprise
from sqlalchemy.orm import Session

from shared.policy_routes import RouteSpec, channel_env
from worker.notify import console  # noqa: F401 - registers the console:// channel with Apprise
from worker.notify.ack_links import LinkSigner
from worker.notify.batch_rows import (
    Note,
    existing,
    lock_notes,
    lock_written,
    sweep_notes,
    write_back,
)
from worker.notify.facts import Said, TicketFacts, checkpoint_facts, checkpoints_about
from worker.notify.messages import Message, MessageFacts, render, render_digest
from worker.notify.outbox import store_tried, write_notification
from worker.notify.paging import next_repeat
from worker.notify.storm import Pending, Send, StormSettings, plan_sends
from worker.policies.book import PolicyBook

_SPLIT = re.compile(r"[\s,]+")
MAX_BACKOFF_S = 300
SEND_THREADS = 8  # Apprise calls in flight at once per worker process
SWEEP_MAX = 1000  # other pending notifications of a channel one batch may take along
SWEEP_WINDOW = 5000  # … from ids this close to the batch's (a primary-key range scan)


class Delivery(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # some targets failed: try those again later
    DEAD = "dead"  # out of attempts, or the channel is not configured
    BUSY = "busy"  # another batch holds it (it swept it in): look again in a moment


class About(NamedTuple):
    """What a log line says of a notification tried: never a URL, only the channel's scheme."""

    checkpoint: int
    channel: str
    scheme: str
    source: str
    ticket_id: str
    message: str  # the dedupe key of the message that carried it: its own, or its digest's


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    retry_in_s: float | None = None
    error: str | None = None
    repeat_at: datetime | None = None  # an unacknowledged page repeats then
    fallback_id: int | None = None  # the notification written to the route's fallback channel
    about: About | None = None  # None: not tried here (held elsewhere, or done before)


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


class _Row(NamedTuple):
    """A notification with what sending it needs."""

    notification: Note
    route: RouteSpec | None
    language: str
    urls: list[str]
    scheme: str  # of the channel's URLs: what a log line may say of them
    facts: MessageFacts


@dataclass(frozen=True)
class Deliverer:
    policies: PolicyBook
    sender: Sender
    environ: Mapping[str, str]
    rng: random.Random = field(default_factory=random.Random)
    # acknowledgement links: (public URL, signing secret), their lifetime from the environment
    ack_links: tuple[str, str] | LinkSigner | None = None
    storm: StormSettings | None = None  # None: from the environment

    def deliver(self, session: Session, notification_id: int, now: datetime) -> Outcome:
        """Try one notification's pending targets once (the caller commits)."""
        return self.deliver_many(session, [notification_id], now, sweep=False)[notification_id]

    def deliver_many(
        self, session: Session, ids: Sequence[int], now: datetime, *, sweep: bool = True
    ) -> dict[int, Outcome]:
        """Try the pending targets of ``ids`` once (with ``sweep``, also other pending
        notifications of a channel in a storm); each one's outcome (the caller commits)."""
        storm = self._storm()
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
        about = checkpoints_about(session, (n.checkpoint_id for n in live)) if live else {}
        outcomes.update(self._deliver(session, live, about, storm, now))
        return outcomes

    def deliver_written(
        self, session: Session, notes: Sequence[Note], about: Mapping[int, Any], now: datetime
    ) -> dict[int, Outcome]:
        """Deliver notifications just written (and committed) with their checkpoints' `ABOUT`
        rows at hand: the fire step's own batch, neither read back nor swept together with
        others (the caller commits).

        Each row is locked first (``SKIP LOCKED``): one another batch swept in meanwhile is
        that batch's to send, and comes back busy.
        """
        statuses = lock_written(session, [note.id for note in notes])
        outcomes = {}
        live = []
        for note in notes:
            status = statuses.get(note.id)
            if status == "pending":
                live.append(note)
            elif status in (Delivery.SENT.value, Delivery.DEAD.value):
                outcomes[note.id] = Outcome(Delivery(status))
            else:  # held by another batch, or tried by one already: it reports them
                outcomes[note.id] = Outcome(Delivery.BUSY)
        outcomes.update(self._deliver(session, live, about, self._storm(), now))
        return outcomes

    def deliver_unwritten(
        self, session: Session, notes: Sequence[Note], about: Mapping[int, Any], now: datetime
    ) -> dict[int, Outcome]:
        """Deliver notifications not stored yet (`worker.notify.outbox.planned_notes`), in the
        transaction that fired their checkpoints, then store each as its try left it.

        No other transaction can see them, so none is locked, and each row is written once.
        If this transaction does not commit, the checkpoints stay armed and fire again: what
        was sent is sent again (its dedupe key lets the receiving end drop it).
        """
        return self._deliver(session, notes, about, self._storm(), now, stored=False)

    def _storm(self) -> StormSettings:
        return self.storm or StormSettings.from_environ(self.environ)

    def _deliver(
        self,
        session: Session,
        live: Sequence[Note],
        about: Mapping[int, Any],
        storm: StormSettings,
        now: datetime,
        *,
        stored: bool = True,
    ) -> dict[int, Outcome]:
        """Send ``live`` (locked by this transaction, or not ``stored`` yet), record each
        one's results, and write them back (or store them)."""
        outcomes: dict[int, Outcome] = {}
        rows = self._rows(session, live, about, now)
        sendable = []
        for row in rows:
            if row.urls:
                sendable.append(row)
                continue
            error = f"{channel_env(row.notification.channel)} is not set"
            about_it = _about(row, row.notification.dedupe_key)
            outcomes[row.notification.id] = self._dead(
                session, row.notification, row.route, error, now, about=about_it
            )
        outcomes.update(self._send_all(session, sendable, storm, now))
        if stored:
            write_back(session, live)
        else:
            store_tried(session, live, now)
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
            key, per_target = messages[send][1], results[send]
            tried = {str(i): err is None for i, err in per_target.items()}
            failures = [err for _, err in sorted(per_target.items()) if err is not None]
            for nid in send.ids:
                row = by_id[nid]
                outcomes[nid] = self._record(session, row, tried, failures, now, _about(row, key))
        return outcomes

    def _message(self, send: Send, by_id: dict[int, _Row], now: datetime) -> tuple[Message, str]:
        """The message and the dedupe key its header carries (a digest's names its range)."""
        rows = [by_id[nid] for nid in send.ids]
        if not send.digest:
            return render(send.language, rows[0].facts, now), rows[0].notification.dedupe_key
        # named by what it carries, not by row ids: a batch sent again after its transaction
        # rolled back has new ids, and the same digest must keep the same key
        members = hashlib.sha256("\n".join(r.notification.dedupe_key for r in rows).encode())
        key = f"digest:{send.channel}:{members.hexdigest()[:16]}:{len(send.ids)}"
        return render_digest(send.language, [row.facts for row in rows], now), key

    def _record(  # noqa: PLR0917 - a send's results, worked out once for all its notifications
        self,
        session: Session,
        row: _Row,
        tried: dict[str, bool],
        failures: list[str],
        now: datetime,
        about: About,
    ) -> Outcome:
        """One notification's results of this try (per target: accepted?, and the errors of
        those that failed): sent, retry the failed targets, or dead."""
        notification, route = row.notification, row.route
        notification.changed = True
        notification.results = {**notification.results, **tried} if notification.results else tried
        notification.attempts += 1
        if not failures:
            notification.status, notification.delivered_at, notification.last_error = (
                Delivery.SENT.value,
                now,
                None,
            )
            repeat_at = next_repeat(route, notification, now)
            return Outcome(Delivery.SENT, repeat_at=repeat_at, about=about)
        notification.last_error = "; ".join(failures)
        if route is None or notification.attempts >= route.attempts:
            error = notification.last_error
            return self._dead(session, notification, route, error, now, about=about)
        notification.status = "retrying"
        retry_in_s = backoff_s(notification.attempts, self.rng)
        return Outcome(Delivery.RETRY, retry_in_s, notification.last_error, about=about)

    def _dead(
        self,
        session: Session,
        notification: Note,
        route: RouteSpec | None,
        error: str,
        now: datetime,
        *,
        about: About,
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
        return Outcome(Delivery.DEAD, error=error, fallback_id=fallback_id, about=about)

    def _rows(
        self, session: Session, live: Sequence[Note], about: Mapping[int, Any], now: datetime
    ) -> list[_Row]:
        """Each notification with its route, URLs and message facts (two queries at most); an
        acknowledgement link made ``now`` works for the link's lifetime from then."""
        if not live:
            return []
        tickets = TicketFacts.load(session, [about[n.checkpoint_id] for n in live])
        signer = self._signer()
        rows = []
        routes: dict[tuple[str, str], RouteSpec | None] = {}
        channels: dict[str, tuple[list[str], str]] = {}  # URLs and their schemes
        zones: dict[tuple[Any, ...], ZoneInfo] = {}
        said: dict[int, Said] = {}  # by checkpoint: what all its messages say
        for notification in live:
            row = about[notification.checkpoint_id]
            loaded = self.policies.named(row.policy)
            key = (row.policy, notification.route)
            if key not in routes:
                routes[key] = next(
                    (r for r in loaded.policy.routes if r.name == notification.route), None
                )
            channel = notification.channel
            if channel not in channels:
                urls = channel_urls(channel, self.environ)
                channels[channel] = (urls, schemes(urls))
            if row.id not in said:
                said[row.id] = checkpoint_facts(row, loaded, tickets, zones)
            dedupe = notification.dedupe_key
            link = signer.url(dedupe, now) if signer else None
            facts = MessageFacts(*said[row.id], dedupe, link)
            rows.append(
                _Row(notification, routes[key], loaded.policy.language, *channels[channel], facts)
            )
        return rows

    def _signer(self) -> LinkSigner | None:
        """What signs the pages' acknowledgement links (None: links are off)."""
        if self.ack_links is None or isinstance(self.ack_links, LinkSigner):
            return self.ack_links
        base, secret = self.ack_links
        return LinkSigner.from_environ(base, secret, self.environ)


def _about(row: _Row, message: str) -> About:
    notification, facts = row.notification, row.facts
    return About(
        notification.checkpoint_id,
        notification.channel,
        row.scheme,
        facts.source,
        facts.ticket_id,
        message,
    )


def schemes(urls: Sequence[str]) -> str:
    """What may be logged of a channel: its URLs' schemes (``json+mailto``), or ``none``."""
    return "+".join(sorted({scheme(url) for url in urls})) or "none"


def _todo(row: _Row) -> tuple[int, ...]:
    """The targets of the channel that have not accepted this notification yet."""
    done = row.notification.results
    if not done:  # never tried: all of them
        return tuple(range(len(row.urls)))
    return tuple(i for i in range(len(row.urls)) if not done.get(str(i)))


@cache
def _pool() -> ThreadPoolExecutor:
    """The process's sending threads (made on first use: after Celery's fork, not before)."""
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="escalera-send")
