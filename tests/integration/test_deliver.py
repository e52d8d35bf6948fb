"""Delivering notifications for real, through Apprise, to a sink on 127.0.0.1."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.db.models import Notification
from tests.integration.breach import START, add_routes, fire_breach
from tests.integration.sinks import JsonSink, SmtpSink
from worker.notify.channels import channel_urls
from worker.notify.deliver import Deliverer
from worker.notify.outcome import Delivery
from worker.notify.transport import AppriseSender, scheme
from worker.runtime import runtime

ROUTES = """
channels:
  oncall: {}
  leads: {}
routes:
  - {name: p1-page, when: {priorities: [P1], kinds: [breach]}, channels: [oncall], attempts: 3, fallback: leads}
ticket_links: {api: "https://desk.example/tickets/{ticket_id}"}
"""


@pytest.fixture
def breach_notification(policy_dir: Path, configured: None) -> int:
    """A fired P1 first-response breach with its pending notification to `oncall`."""
    add_routes(policy_dir, ROUTES)
    fire_breach("N-1", customer="acme")
    with runtime().sessions() as s:
        return s.scalars(select(Notification.id).where(Notification.channel == "oncall")).one()


def deliver(deliverer: Deliverer, notification_id: int, now: datetime):  # type: ignore[no-untyped-def]
    with runtime().sessions.begin() as session:
        return deliverer.deliver(session, notification_id, now)


def test_a_breach_reaches_the_sink_with_everything_needed(
    breach_notification: int, sink: JsonSink
) -> None:
    """The on-call's webhook receives the message with deadline, overdue time, link and dedupe key."""
    deliverer = Deliverer(
        runtime().policies, AppriseSender(), {"ESCALERA_CHANNEL_ONCALL": sink.url()}
    )
    outcome = deliver(deliverer, breach_notification, START + timedelta(minutes=31))
    assert outcome.delivery is Delivery.SENT
    (message,) = sink.received
    assert message["json"]["title"] == "[P1] api/N-1: primera respuesta incumplida"
    assert "Plazo: 2026-03-02 09:30 CST (vencido hace 1m)" in message["json"]["message"]
    assert "Abrir el ticket: https://desk.example/tickets/N-1" in message["json"]["message"]
    assert message["headers"]["X-Escalera-Dedupe-Key"].endswith(":p1-page:oncall:0")


def test_a_breach_is_emailed_through_an_smtp_server(breach_notification: int) -> None:
    """mailto:// delivers the page as an e-mail whose subject is the title and body the details."""
    smtp = SmtpSink()
    try:
        deliverer = Deliverer(
            runtime().policies, AppriseSender(), {"ESCALERA_CHANNEL_ONCALL": smtp.url()}
        )
        assert (
            deliver(deliverer, breach_notification, START + timedelta(minutes=31)).delivery
            is Delivery.SENT
        )
        (mail,) = smtp.messages
        assert mail["Subject"] == "[P1] api/N-1: primera respuesta incumplida"
        assert mail["To"] == "oncall@example.com"
        body = (
            mail.get_payload(decode=True)
            if not mail.is_multipart()
            else mail.get_payload(0).get_payload(decode=True)
        )
        assert b"Plazo: 2026-03-02 09:30 CST" in body
    finally:
        smtp.close()


def test_a_sent_notification_is_never_sent_again(breach_notification: int, sink: JsonSink) -> None:
    """A redelivered deliver task finds it sent and does nothing: one page, not two."""
    deliverer = Deliverer(
        runtime().policies, AppriseSender(), {"ESCALERA_CHANNEL_ONCALL": sink.url()}
    )
    deliver(deliverer, breach_notification, START + timedelta(minutes=31))
    assert (
        deliver(deliverer, breach_notification, START + timedelta(minutes=32)).delivery
        is Delivery.SENT
    )
    assert len(sink.received) == 1


def test_a_sink_that_comes_back_gets_the_notification_exactly_once(
    breach_notification: int, sink: JsonSink
) -> None:
    """Down on the first try, up on the second: retried with backoff, delivered once."""
    deliverer = Deliverer(
        runtime().policies,
        AppriseSender(),
        {"ESCALERA_CHANNEL_ONCALL": sink.url()},
        random.Random(1),
    )
    sink.failing = True
    first = deliver(deliverer, breach_notification, START + timedelta(minutes=31))
    assert (
        first.delivery is Delivery.RETRY
        and first.retry_in_s is not None
        and 1 <= first.retry_in_s <= 3
    )
    sink.failing = False
    assert (
        deliver(deliverer, breach_notification, START + timedelta(minutes=32)).delivery
        is Delivery.SENT
    )
    assert len(sink.received) == 1


def test_only_the_failed_target_of_a_channel_is_retried(
    breach_notification: int, sink: JsonSink
) -> None:
    """A channel with two webhooks, one down: the retry goes to the one that failed, not both."""
    other = JsonSink()
    try:
        environ = {"ESCALERA_CHANNEL_ONCALL": f"{sink.url('a')} {other.url('b')}"}
        deliverer = Deliverer(runtime().policies, AppriseSender(), environ)
        other.failing = True
        assert deliver(deliverer, breach_notification, START).delivery is Delivery.RETRY
        other.failing = False
        assert deliver(deliverer, breach_notification, START).delivery is Delivery.SENT
        assert (len(sink.received), len(other.received)) == (1, 1)
    finally:
        other.close()


def test_out_of_attempts_the_notification_dies_and_the_fallback_is_told(
    breach_notification: int, sink: JsonSink
) -> None:
    """After the route's 3 attempts the page is dead-lettered, and a notification to `leads` is written."""
    deliverer = Deliverer(
        runtime().policies, AppriseSender(), {"ESCALERA_CHANNEL_ONCALL": sink.url()}
    )
    sink.failing = True
    outcomes = [deliver(deliverer, breach_notification, START).delivery for _ in range(3)]
    assert outcomes == [Delivery.RETRY, Delivery.RETRY, Delivery.DEAD]
    with runtime().sessions() as s:
        rows = {n.channel: (n.status, n.attempts) for n in s.scalars(select(Notification))}
    assert rows == {"oncall": ("dead", 3), "leads": ("pending", 0)}


def test_an_unconfigured_channel_is_dead_at_once_naming_the_variable(
    breach_notification: int,
) -> None:
    """No ESCALERA_CHANNEL_ONCALL: not retried forever; the error names what to set."""
    outcome = deliver(
        Deliverer(runtime().policies, AppriseSender(), {}), breach_notification, START
    )
    assert (outcome.delivery, outcome.error) == (
        Delivery.DEAD,
        "ESCALERA_CHANNEL_ONCALL is not set",
    )


def test_channel_urls_are_read_from_the_environment_and_only_their_scheme_is_shown() -> None:
    """Several URLs per channel; what may be logged of one is its scheme, never its key."""
    environ = {"ESCALERA_CHANNEL_ONCALL": "json://h/x, mailto://u:secret@h"}
    assert channel_urls("oncall", environ) == ["json://h/x", "mailto://u:secret@h"]
    assert [scheme(u) for u in channel_urls("oncall", environ)] == ["json", "mailto"]
