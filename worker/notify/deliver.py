"""Delivering notifications in batches: each locked, a storm's others swept in, its try recorded.

A batch is one transaction: its notifications are locked (a redelivered or concurrent batch
waits, then finds them sent), other pending notifications of the same channels are swept in
(``SKIP LOCKED``: never waited for), a storm on a channel becomes digests (`worker.notify.storm`),
and the messages go out through `worker.notify.transport`. Each notification keeps its own
attempts, per-target results and fate (`worker.notify.retry`: its failed targets again later,
or dead and its route's fallback channel told), exactly as when sent alone; a target that
accepted it is never sent it again.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.orm import Session

from shared.db.models import NotificationState
from shared.policy_routes import RouteSpec
from worker.notify.ack_links import LinkSigner
from worker.notify.batch_rows import (
    Note,
    existing,
    lock_notes,
    lock_written,
    sweep_notes,
    write_back,
)
from worker.notify.breaker import Target
from worker.notify.breaker_store import Breakers, Checked
from worker.notify.channels import Targets, channel_targets, not_configured
from worker.notify.facts import TicketFacts, checkpoint_facts, checkpoints_about
from worker.notify.messages import (
    CheckpointFacts,
    Message,
    MessageFacts,
    render,
    render_digest_lines,
)
from worker.notify.outbox import ACK_NOTICE, write_notification
from worker.notify.outcome import About, Delivery, Outcome
from worker.notify.overdue import next_try_by
from worker.notify.paging import ANONYMOUS, acknowledged, next_repeat
from worker.notify.retry import Failure, Retry, retry_decision
from worker.notify.storm import Pending, Send, StormSettings, plan_sends
from worker.notify.transport import Sender, scheme, send_all, send_one
from worker.notify.writeback import is_writeback
from worker.policies.book import PolicyBook

log = structlog.get_logger("escalera.worker")
SWEEP_MAX = 1000  # other pending notifications of a channel one batch may take along
SWEEP_WINDOW = 5000  # … from ids this close to the batch's (a primary-key range scan)
# A notification found sent or dead is never tried again: what it came to.
_FINISHED: dict[str, Delivery] = {
    NotificationState.SENT: Delivery.SENT,
    NotificationState.DEAD: Delivery.DEAD,
    NotificationState.SKIPPED: Delivery.SKIPPED,
}


class _Row(NamedTuple):
    """A notification with what sending it needs."""

    notification: Note
    route: RouteSpec | None
    language: str
    urls: list[str]
    scheme: str  # of the channel's URLs: what a log line may say of them
    said: CheckpointFacts  # what every message about its checkpoint says
    link: str | None  # its acknowledgement link
    alone: bool  # never in a digest: a note on its own ticket, or who acknowledged a page
    notice: MessageFacts | None = None  # an acknowledgement notice's: who acknowledged, when

    @property
    def facts(self) -> MessageFacts:
        """What its own message says (a digest words its line from `said` alone)."""
        if self.notice is not None:
            return self.notice
        return self.said.message(self.notification.dedupe_key, self.link)

    def about(self, message: str) -> About:
        notification, said = self.notification, self.said
        return About(
            notification.checkpoint_id,
            notification.channel,
            self.scheme,
            said.source,
            said.ticket_id,
            message,
        )

    def todo(self) -> tuple[int, ...]:
        """The targets of the channel that have not accepted this notification yet."""
        done = self.notification.results
        if not done:  # never tried: all of them
            return tuple(range(len(self.urls)))
        return tuple(i for i in range(len(self.urls)) if not done.get(str(i)))


@dataclass(frozen=True)
class Deliverer:
    policies: PolicyBook
    sender: Sender
    environ: Mapping[str, str]  # the channels' URLs (`worker.notify.channels`)
    rng: random.Random = field(default_factory=random.Random)
    # acknowledgement links: (public URL, signing secret), their lifetime from the environment
    ack_links: tuple[str, str] | LinkSigner | None = None
    storm: StormSettings | None = None  # None: from ``environ``, read here, once
    # targets found not answering are parked, not waited on (`worker.notify.breaker`); None: off
    breakers: Breakers | None = None
    timer: Callable[[], float] = time.monotonic  # how long a send took
    _storm: StormSettings = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a bad value fails here, where the deliverer is made, not when a page fires
        object.__setattr__(self, "_storm", self.storm or StormSettings.from_environ(self.environ))

    def deliver(self, session: Session, notification_id: int, now: datetime) -> Outcome:
        """Try one notification's pending targets once (the caller commits)."""
        return self.deliver_many(session, [notification_id], now, sweep=False)[notification_id]

    def deliver_many(
        self,
        session: Session,
        ids: Sequence[int],
        now: datetime,
        *,
        sweep: bool = True,
        batch: bool = False,
    ) -> dict[int, Outcome]:
        """Try the pending targets of ``ids`` once (with ``sweep``, also other pending
        notifications of a channel in a storm); each one's outcome (the caller commits).
        A ``batch`` (held notifications released together) goes out as digests."""
        storm = self._storm
        # SKIP LOCKED: a row another batch holds is being sent by it; waiting for it would tie
        # up this worker for that batch's whole send, so it is handed back to look at later.
        locked = lock_notes(session, ids)
        outcomes = {nid: Outcome(Delivery.BUSY) for nid in ids}
        live = []
        for note in locked:
            if note.status in _FINISHED:
                outcomes[note.id] = Outcome(_FINISHED[note.status])
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
        outcomes.update(self._deliver(session, live, about, now, batch=batch))
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
            if status == NotificationState.PENDING:
                live.append(note)
            elif status is not None and status in _FINISHED:
                outcomes[note.id] = Outcome(_FINISHED[status])
            else:  # held by another batch, or tried by one already: it reports them
                outcomes[note.id] = Outcome(Delivery.BUSY)
        outcomes.update(self._deliver(session, live, about, now))
        return outcomes

    def _deliver(
        self,
        session: Session,
        live: Sequence[Note],
        about: Mapping[int, Any],
        now: datetime,
        *,
        batch: bool = False,
    ) -> dict[int, Outcome]:
        """Send ``live`` (locked by this transaction), record each one's results, and write
        them back."""
        outcomes = _skip_acknowledged(session, live)
        rows = self._rows(session, [n for n in live if n.id not in outcomes], about, now)
        sendable = []
        for row in rows:
            if row.urls:
                sendable.append(row)
                continue
            error = not_configured(row.notification.channel)
            about_it = row.about(row.notification.dedupe_key)
            outcomes[row.notification.id] = self._failed(
                session, row, Failure.NOT_CONFIGURED, error, now, about_it
            )
        outcomes.update(self._send_all(session, sendable, now, batch=batch))
        write_back(session, live)
        return outcomes

    def _send_all(
        self, session: Session, rows: Sequence[_Row], now: datetime, *, batch: bool = False
    ) -> dict[int, Outcome]:
        by_id = {row.notification.id: row for row in rows}
        pending = [
            Pending(
                row.notification.id, row.notification.channel, row.language, row.todo(), row.alone
            )
            for row in rows
        ]
        sends = plan_sends(pending, self._storm, batch=batch)
        jobs = [(send, target) for send in sends for target in send.targets]
        checked = (
            self.breakers.check({Target(s.channel, t) for s, t in jobs}, now.timestamp())
            if self.breakers
            else Checked()
        )
        to_send = [job for job in jobs if Target(job[0].channel, job[1]) not in checked.parked]
        # worded only for a message that goes somewhere: a parked target's costs no rendering
        messages = {
            send: _message(send, [by_id[nid] for nid in send.ids], now)
            for send in dict.fromkeys(send for send, _ in to_send)
        }

        def one(job: tuple[Send, int]) -> tuple[str | None, float]:
            send, target = job
            message, key = messages[send]
            started = self.timer()
            error = send_one(self.sender, by_id[send.ids[0]].urls[target], message, key)
            return error, self.timer() - started

        tried = dict(zip(to_send, send_all(one, to_send), strict=True))
        parked = {**checked.parked, **self._trip(checked, tried, by_id, now)}
        outcomes = {}
        waits: dict[
            tuple[int, int], timedelta | None
        ] = {}  # a storm's routes: each worked out once
        for send in sends:
            rendered = messages.get(send)
            key = rendered[1] if rendered else _key(send, [by_id[nid] for nid in send.ids])
            per_target, parks = {}, []
            for target in send.targets:
                if (send, target) in tried:
                    per_target[target] = tried[send, target][0]
                else:
                    url = by_id[send.ids[0]].urls[target]
                    per_target[target] = f"{scheme(url)}: not answering, not tried"
                if per_target[target] is not None:
                    at = Target(send.channel, target)
                    parks.append((parked.get(at, 0.0), at))
            # how long all those it failed on stay parked, and the first of them to reopen
            parked_s, parked_on = min(parks, default=(0.0, None))
            results = {str(i): err is None for i, err in per_target.items()}
            failures = [err for _, err in sorted(per_target.items()) if err is not None]
            for nid in send.ids:
                row = by_id[nid]
                outcomes[nid] = self._record(
                    session,
                    row,
                    results,
                    failures,
                    now,
                    row.about(key),
                    (parked_s, parked_on),
                    waits,
                )
        return outcomes

    def _trip(
        self,
        checked: Checked,
        tried: Mapping[tuple[Send, int], tuple[str | None, float]],
        by_id: Mapping[int, _Row],
        now: datetime,
    ) -> dict[Target, float]:
        """Tell the breakers how each target's sends went; the targets tripped now, with how
        long they are parked (each logged once)."""
        if self.breakers is None or not tried:
            return {}
        sent: dict[Target, tuple[bool, float]] = {}
        for (send, target), (error, elapsed_s) in tried.items():
            failed, slowest = sent.get(Target(send.channel, target), (False, 0.0))
            if error is not None:
                failed, slowest = True, max(slowest, elapsed_s)
            sent[Target(send.channel, target)] = (failed, slowest)
        tripped = self.breakers.record(checked, sent, now.timestamp())
        told = set()
        for (send, target), (error, elapsed_s) in tried.items():
            if error is None or (at := Target(send.channel, target)) not in tripped or at in told:
                continue
            told.add(at)
            about = by_id[send.ids[0]].about(by_id[send.ids[0]].notification.dedupe_key)
            log.warning(
                "channel_not_answering",
                channel=send.channel,
                target=target,
                error=error,
                took_s=round(elapsed_s, 2),
                parked_s=round(tripped[at], 1),
                source=about.source,
                ticket_id=about.ticket_id,
                checkpoint_id=about.checkpoint,
            )
        return tripped

    def _record(  # noqa: PLR0917 - a send's results, worked out once for all its notifications
        self,
        session: Session,
        row: _Row,
        tried: dict[str, bool],
        failures: list[str],
        now: datetime,
        about: About,
        parked: tuple[float, Target | None] = (0.0, None),
        waits: dict[tuple[int, int], timedelta | None] | None = None,
    ) -> Outcome:
        """One notification's results of this try (per target: accepted?, and the errors of
        those that failed): sent, or failed (`_failed`; ``parked``: how long every target it
        failed on stays parked, and the first of them to reopen; ``waits``:
        `next_repeat`'s)."""
        notification = row.notification
        notification.changed = True
        notification.results = {**notification.results, **tried} if notification.results else tried
        notification.attempts += 1
        if not failures:
            notification.status, notification.delivered_at, notification.last_error = (
                NotificationState.SENT.value,
                now,
                None,
            )
            notification.repeat_at = next_repeat(row.route, notification, now, waits)
            return Outcome(Delivery.SENT, repeat_at=notification.repeat_at, about=about)
        return self._failed(session, row, Failure.TARGETS, "; ".join(failures), now, about, parked)

    def _failed(  # noqa: PLR0917 - as `_record`
        self,
        session: Session,
        row: _Row,
        failure: Failure,
        error: str,
        now: datetime,
        about: About,
        parked: tuple[float, Target | None] = (0.0, None),
    ) -> Outcome:
        """Record what a failed try leads to (`worker.notify.retry.retry_decision`): retrying,
        or dead, and then the route's fallback channel is told instead, once. A retry whose
        targets are all parked waits for the first of them to reopen (`Retry.parked_on`)."""
        notification, route = row.notification, row.route
        parked_s, parked_on = parked
        decision = retry_decision(
            notification.attempts,
            failure,
            route,
            channel=notification.channel,
            rng=self.rng,
            parked_s=parked_s,
        )
        notification.status, notification.last_error = decision.state.value, error
        notification.changed = True
        if isinstance(decision, Retry):
            notification.attempts += decision.skipped  # tries that could only find it parked
            notification.next_try_at = next_try_by(now, decision.countdown_s)
            if parked_on is not None and parked_s > 0:
                decision = replace(
                    decision,
                    parked_on=parked_on,
                    parked_s=parked_s,
                    attempts=notification.attempts,
                )
            return Outcome(Delivery.RETRY, decision, error, about=about)
        if route is not None and route.chain:  # a step nobody could be told: on to the next
            notification.repeat_at = next_repeat(route, notification, now)
        fallback_id = None
        if route is not None and decision.fallback is not None:
            fallback_id = write_notification(
                session,
                checkpoint_id=notification.checkpoint_id,
                route=route.name,
                channel=decision.fallback,
                repeat=notification.repeat,
                now=now,
                fallback=True,
            )
        return Outcome(
            Delivery.DEAD,
            decision,
            error,
            repeat_at=notification.repeat_at,
            fallback_id=fallback_id,
            about=about,
        )

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
        routes: dict[tuple[str, str], tuple[RouteSpec | None, str]] = {}  # and its language
        # by channel: its targets, whether any is a note on the ticket, whether all are
        channels: dict[str, tuple[Targets, bool, bool]] = {}
        zones: dict[tuple[Any, ...], ZoneInfo] = {}
        said: dict[int, tuple[CheckpointFacts, str]] = {}  # by checkpoint: facts, policy
        for notification in live:
            checkpoint = notification.checkpoint_id
            if checkpoint not in said:
                row = about[checkpoint]
                loaded = self.policies.named(row.policy)
                said[checkpoint] = (checkpoint_facts(row, loaded, tickets, zones), row.policy)
            facts, policy = said[checkpoint]
            key = (policy, notification.route)
            if key not in routes:
                loaded = self.policies.named(policy)
                route = next(
                    (r for r in loaded.policy.routes if r.name == notification.route), None
                )
                routes[key] = (route, loaded.policy.language)
            channel = notification.channel
            if channel not in channels:
                targets = channel_targets(channel, self.environ)
                notes = [is_writeback(url) for url in targets.urls]
                channels[channel] = (targets, any(notes), bool(notes) and all(notes))
            (urls, scheme_of), writeback, only_writeback = channels[channel]
            dedupe = notification.dedupe_key
            # a note on the ticket is no page: it gets no acknowledgement link
            notice = notification.repeat == ACK_NOTICE  # says who acknowledged: nothing to ack
            link = signer.url(dedupe, now) if signer and not only_writeback and not notice else None
            told = (
                _acknowledged_by(session, facts.message(dedupe), notification) if notice else None
            )
            route, language = routes[key]
            rows.append(
                _Row(
                    notification,
                    route,
                    language,
                    urls,
                    scheme_of,
                    facts,
                    link,
                    notice or writeback,  # never in a digest
                    told,
                )
            )
        return rows

    def _signer(self) -> LinkSigner | None:
        """What signs the pages' acknowledgement links (None: links are off)."""
        if self.ack_links is None or isinstance(self.ack_links, LinkSigner):
            return self.ack_links
        base, secret = self.ack_links
        return LinkSigner.from_environ(base, secret, self.environ)


def _acknowledged_by(session: Session, facts: MessageFacts, notice: Note) -> MessageFacts:
    """An acknowledgement notice's facts: who acknowledged its page, and when."""
    acks = acknowledged(session, [notice.checkpoint_id])
    by, at = acks.get((notice.checkpoint_id, notice.route), (ANONYMOUS, notice.acknowledged_at))
    return replace(facts, acknowledged_by=by, acknowledged_at=at)


def _skip_acknowledged(session: Session, notes: Sequence[Note]) -> dict[int, Outcome]:
    """Repeats and steps (message 1 on) of pages acknowledged since they were written: marked
    skipped instead of sent, so nothing of a page reaches anyone after its acknowledgement
    commits. A page's first message always goes out."""
    later = [note for note in notes if note.repeat > 0]
    if not later:
        return {}
    acks = acknowledged(session, (note.checkpoint_id for note in later))
    skipped = {}
    for note in later:
        if (note.checkpoint_id, note.route) in acks:
            note.status, note.repeat_at = NotificationState.SKIPPED.value, None
            note.changed = True
            skipped[note.id] = Outcome(Delivery.SKIPPED)
    return skipped


def _key(send: Send, rows: Sequence[_Row]) -> str:
    """The dedupe key ``send``'s message carries (``rows``: its notifications): a single
    notification's own, or a digest's, named by what it carries."""
    if not send.digest:
        return rows[0].notification.dedupe_key
    # named by what it carries, not by row ids: a batch sent again after its transaction
    # rolled back has new ids, and the same digest must keep the same key
    members = hashlib.sha256("\n".join(r.notification.dedupe_key for r in rows).encode())
    return f"digest:{send.channel}:{members.hexdigest()[:16]}:{len(send.ids)}"


def _message(send: Send, rows: Sequence[_Row], now: datetime) -> tuple[Message, str]:
    """The message of ``send`` (``rows``: its notifications) and the dedupe key it carries."""
    if not send.digest:
        return render(send.language, rows[0].facts, now), _key(send, rows)
    lines = [(row.said, row.notification.dedupe_key, row.link) for row in rows]
    digest = render_digest_lines(send.language, lines, now, held=send.batch, last=rows[-1].facts)
    return digest, _key(send, rows)
