"""A support desk on a fake clock, for driving one ticket through its whole life in-process.

`Desk` runs the production pieces with ``now`` injected at every step, as the Celery tasks and
beat would run them: ``apply_event`` then the timer index after the commit (the apply task),
`Dispatcher.tick` at each instant something falls due (beat waking up), ``fire_checkpoints``
(the fire task), `Deliverer` through real Apprise to sinks on 127.0.0.1 (the deliver task),
``repeat_pages`` (the repeat task), reconcile (beat's minute, when a story asks for it) and the
ingest app's acknowledgement endpoint. Every fire, deliver and repeat step runs twice, as an
at-least-once queue may run it: the sinks must still receive each message once.

What reached the sinks is collected after each delivery as `Received`, stamped with the
fake-clock instant it was delivered at, and compared with a story's table of `Expected` messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from scheduler.dispatch import Dispatcher
from shared.config import settings
from shared.db.models import Checkpoint, Notification
from shared.events import Event
from tests.integration.sinks import JsonSink, SmtpSink
from worker.api.acks import ack_clock
from worker.api.app import create_app
from worker.api.service import services
from worker.events.apply import apply_event
from worker.events.reconcile import reconcile_repeats, reconcile_timers
from worker.notify.ack_links import LinkSigner
from worker.notify.deliver import Deliverer
from worker.notify.fire import fire_checkpoints
from worker.notify.outcome import Delivery
from worker.notify.paging import Stopped, repeat_pages
from worker.notify.transport import AppriseSender
from worker.runtime import runtime

PUBLIC_URL = "https://escalera.example"
ACK_SECRET = "lifecycle-ack-secret"
API_TOKEN = "lifecycle-ops-token"
REDELIVERIES = 2  # each fire, deliver and repeat task runs this many times


def serve_policy(policy_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    """The policy ``name`` (``text``) in force as the default, with the desk's API token,
    acknowledgement secret and public URL; the runtime rebuilt to read them."""
    (policy_dir / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("ESCALERA_DEFAULT_POLICY", name)
    monkeypatch.setenv("ESCALERA_API_TOKENS", f'["{API_TOKEN}"]')
    monkeypatch.setenv("ESCALERA_ACK_SECRET", ACK_SECRET)
    monkeypatch.setenv("ESCALERA_PUBLIC_URL", PUBLIC_URL)
    settings.cache_clear()
    runtime.cache_clear()


@dataclass(frozen=True)
class Received:
    at: datetime  # the fake-clock instant it was delivered at
    channel: str
    title: str
    body: str
    key: str  # the notification's dedupe key


class Sinks:
    """Where each channel's messages go: e-mail channels (``*_email``) to one SMTP server, a
    recipient per channel; every other channel to a JSON webhook of its own."""

    def __init__(self, channels: Sequence[str]) -> None:
        self.smtp = SmtpSink()
        self.hooks = {name: JsonSink() for name in channels if not name.endswith("_email")}
        self.emails = [name for name in channels if name.endswith("_email")]
        self._seen_mail = 0
        self._seen_hook = dict.fromkeys(self.hooks, 0)

    def environ(self) -> dict[str, str]:
        urls = {name: sink.url(name) for name, sink in self.hooks.items()}
        urls |= {name: self.smtp.url(f"{name}@example.com") for name in self.emails}
        return {f"ESCALERA_CHANNEL_{name.upper()}": url for name, url in urls.items()}

    def new_messages(self, at: datetime) -> Iterator[Received]:
        """What arrived since the last call (one delivery's worth: its order is the sends')."""
        for mail in self.smtp.messages[self._seen_mail :]:
            yield _from_mail(mail, at)
        self._seen_mail = len(self.smtp.messages)
        for name, sink in self.hooks.items():
            for post in sink.received[self._seen_hook[name] :]:
                body = post["json"]["message"]
                key = post["headers"]["X-Escalera-Dedupe-Key"]
                yield Received(at, name, post["json"]["title"], body, key)
            self._seen_hook[name] = len(sink.received)

    def close(self) -> None:
        self.smtp.close()
        for sink in self.hooks.values():
            sink.close()


def _from_mail(mail: Message, at: datetime) -> Received:
    """An e-mail as received: the channel from its recipient, the text from its plain body."""
    assert not mail.is_multipart(), "the message is plain text, one line per fact"
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode(mail.get_content_charset() or "utf-8").replace("\r\n", "\n").strip()
    key = re.search(r"^Notificación: (\S+)$", body, re.MULTILINE)
    assert key is not None, body
    channel = str(mail["To"]).split("@", 1)[0]
    return Received(at, channel, str(make_header(decode_header(mail["Subject"]))), body, key[1])


@dataclass(frozen=True)
class Ticket:
    """What every message about the ticket must say."""

    source: str
    ticket_id: str
    plan: str
    customer: str
    priority: str
    link: str


class Desk:
    """One preset's desk: events in at given instants, the clock run forward, pages acked."""

    def __init__(self, sinks: Sinks, zone: str, ticket: Ticket) -> None:
        rt = runtime()
        self.rt, self.sinks, self.zone, self.ticket = rt, sinks, ZoneInfo(zone), ticket
        self.deliverer = Deliverer(
            rt.policies, AppriseSender(), sinks.environ(), ack_links=(PUBLIC_URL, ACK_SECRET)
        )
        self.dispatcher = Dispatcher(rt.timers, self._fire, also=[(rt.repeats, self._repeat)])
        app = create_app(services(rt))
        app.dependency_overrides[ack_clock] = lambda: self.now  # the desk's clock, not the wall's
        self.api = TestClient(app)
        self.received: list[Received] = []
        self.stopped: list[Stopped] = []  # pages that did not go on, as the repeat task saw them
        self.drop_arms = 0  # the next deliveries whose page repeat is never armed in Redis
        self.now = datetime.fromtimestamp(0, UTC)
        self._ids = count(1)

    def local(self, text: str) -> datetime:
        """``2026-03-02 10:45[:30]`` on the desk's wall clock, as an aware instant."""
        return datetime.fromisoformat(text).replace(tzinfo=self.zone)

    def zone_time(self, message: Received) -> str:
        """When ``message`` was delivered, on the desk's wall clock: ``10:27``."""
        return message.at.astimezone(self.zone).strftime("%H:%M")

    # -- the ticket's events ----------------------------------------------------------------
    def event(self, at: str, kind: str, *, arrives: str | None = None, **fields: Any) -> Event:
        """Run the clock to ``at``, apply one event of the ticket then, and fire what it made
        due. ``arrives``: it happened ``at`` but reaches Escalera only then (an import, a
        portal retrying after an outage)."""
        when = self.local(at)
        applied = self.local(arrives) if arrives is not None else when
        self.run_until(applied)
        event = Event.model_validate(
            {
                "event_id": f"{self.ticket.ticket_id}-e{next(self._ids)}",
                "source": self.ticket.source,
                "ticket_id": self.ticket.ticket_id,
                "type": kind,
                "occurred_at": when,
                **fields,
            }
        )
        with self.rt.sessions.begin() as session:
            changes = apply_event(session, self.rt.policies, event, applied).changes
        # after the commit, as the apply task does
        self.rt.timers.arm([(row.id, row.due_at) for row in changes.added])
        self.rt.timers.arm([(row.id, row.due_at) for row, _old in changes.moved])
        self.rt.timers.disarm([row.id for row in changes.cancelled])
        self.run_until(applied)
        return event

    # -- time -------------------------------------------------------------------------------
    def run_until(self, until: datetime) -> None:
        """Beat's loop: wake at each due instant up to ``until`` and hand out what is due."""
        while (due := self._next_due()) is not None and due <= until:
            self._tick(max(due, self.now))  # due before now (a late event): beat wakes now
        self.now = max(self.now, until)

    def _next_due(self) -> datetime | None:
        dues = [due for index in (self.rt.timers, self.rt.repeats) if (due := index.next_due())]
        return datetime.fromtimestamp(min(dues), UTC) if dues else None

    def _tick(self, now: datetime) -> None:
        self.now = now
        self.dispatcher.tick(now)

    def reconcile(self, at: str) -> int:
        """Beat's minute at ``at``: what the database says is armed or coming and Redis does
        not hold is armed again; how many page repeats were missing."""
        self.run_until(self.local(at))
        with self.rt.sessions() as session:
            reconcile_timers(session, self.rt.timers)
            return reconcile_repeats(session, self.rt.repeats)

    def _fire(self, ids: Sequence[int]) -> None:
        for _ in range(REDELIVERIES):
            with self.rt.sessions.begin() as session:
                result = fire_checkpoints(
                    session, self.rt.policies, ids, self.now, directory=self.rt.directory
                )
            self.rt.timers.arm(result.later)
            self.rt.timers.release(ids)
            self._deliver(result.notifications)

    def _repeat(self, ids: Sequence[int]) -> None:
        for _ in range(REDELIVERIES):
            with self.rt.sessions.begin() as session:
                done = repeat_pages(
                    session, self.rt.policies, ids, self.now, directory=self.rt.directory
                )
            self.rt.repeats.arm(done.later)
            self.rt.repeats.release(ids)
            self.stopped += done.stopped
            self._deliver(done.to_deliver)

    def _deliver(self, ids: Sequence[int]) -> None:
        for notification_id in ids:
            for _ in range(REDELIVERIES):
                with self.rt.sessions.begin() as session:
                    outcome = self.deliverer.deliver(session, notification_id, self.now)
                assert outcome.delivery is Delivery.SENT, outcome.error
                self.received += self.sinks.new_messages(self.now)
                if outcome.repeat_at is not None and self.drop_arms:
                    self.drop_arms -= 1  # the worker died after the commit, before arming
                elif outcome.repeat_at is not None:
                    self.rt.repeats.arm([(notification_id, outcome.repeat_at)])

    # -- people -----------------------------------------------------------------------------
    def acknowledge_by_link(self, at: str, message: Received, name: str | None = None) -> None:
        """Someone follows the acknowledgement link printed in ``message`` (typing ``name``)."""
        self.run_until(self.local(at))
        link = re.search(r"^Confirmar recepción: (\S+)$", message.body, re.MULTILINE)
        assert link is not None, message.body
        opened = self.api.get(link[1].removeprefix(PUBLIC_URL))  # shows the page only
        assert opened.status_code == 200, opened.text
        form = {"name": name} if name else None
        response = self.api.post(link[1].removeprefix(PUBLIC_URL), data=form)  # its button
        assert response.status_code == 200, response.text

    def acknowledge_by_api(self, at: str, message: Received) -> None:
        """An operator's tool acknowledges ``message`` with the API token."""
        self.run_until(self.local(at))
        response = self.api.post(
            f"/v1/notifications/{self.notification_id(message.key)}/ack",
            headers={"authorization": f"Bearer {API_TOKEN}"},
        )
        assert response.status_code == 200, response.text

    def message(self, checkpoint: str, route: str, channel: str, repeat: int = 0) -> Received:
        """The message received for a checkpoint (by key) on a route and channel."""
        key = f"{self.checkpoint_ids()[checkpoint]}:{route}:{channel}:{repeat}"
        return next(m for m in self.received if m.key == key)

    # -- what the database says -------------------------------------------------------------
    def notification_id(self, dedupe_key: str) -> int:
        with self.rt.sessions() as session:
            query = select(Notification.id).where(Notification.dedupe_key == dedupe_key)
            return session.scalars(query).one()

    def checkpoint_ids(self) -> dict[str, int]:
        with self.rt.sessions() as session:
            return {key: cid for key, cid in session.execute(select(Checkpoint.key, Checkpoint.id))}

    def armed(self) -> tuple[int, int]:
        """Checkpoints still armed and page repeats still scheduled, in the Redis indexes."""
        return self.rt.timers.count()[0], self.rt.repeats.count()[0]


@dataclass(frozen=True)
class Expected:
    """One message a person receives, read off a story's table."""

    at: str  # local wall time of delivery
    checkpoint: str  # the checkpoint's key
    route: str
    channel: str
    repeat: int
    headline: str
    deadline: str  # the "Plazo" line: the deadline in the calendar's zone, time left or overdue


def table(text: str) -> list[Expected]:
    """Rows of ``at | checkpoint | route | channel | repeat | headline | deadline``."""
    rows = []
    for line in text.strip().splitlines()[1:]:  # the first line names the columns
        at, checkpoint, route, channel, repeat, headline, deadline = (
            cell.strip() for cell in line.split("|")
        )
        rows.append(Expected(at, checkpoint, route, channel, int(repeat), headline, deadline))
    return rows


def assert_messages(desk: Desk, expected: Sequence[Expected]) -> None:
    """Every message received is the one expected, in order, once, with every line right."""
    ticket = desk.ticket
    checkpoints = desk.checkpoint_ids()
    wanted = []
    for row in expected:
        key = f"{checkpoints[row.checkpoint]}:{row.route}:{row.channel}:{row.repeat}"
        ack = LinkSigner(PUBLIC_URL, ACK_SECRET).url(key, desk.local(row.at))
        body = "\n".join(
            [
                f"Ticket: {ticket.source}/{ticket.ticket_id} ({ticket.plan})",
                f"Cliente: {ticket.customer}",
                f"Prioridad: {ticket.priority}",
                f"Plazo: {row.deadline}",
                f"Abrir el ticket: {ticket.link}",
                f"Confirmar recepción: {ack}",
                f"Notificación: {key}",
            ]
        )
        title = f"[{ticket.priority}] {ticket.source}/{ticket.ticket_id}: {row.headline}"
        wanted.append(Received(desk.local(row.at), row.channel, title, body, key))
    got = desk.received
    briefs = ["\n".join(_brief(m, desk.zone) for m in each) for each in (got, wanted)]
    assert briefs[0] == briefs[1], "received:\n{}\nexpected:\n{}".format(*briefs)
    for one, want in zip(got, wanted, strict=True):  # their instants, channels and keys agree
        shown = f"{one.title}\n{one.body}\n-- expected --\n{want.title}\n{want.body}"
        assert (one.title, one.body) == (want.title, want.body), shown
    assert len({m.key for m in got}) == len(got), "a notification reached a sink twice"


def _brief(message: Received, zone: ZoneInfo) -> str:
    """One line per message, so a failing comparison reads like the story's table."""
    at = message.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    return f"{at} {message.channel:<14} {message.key.split(':', 1)[1]:<36} {message.title}"
