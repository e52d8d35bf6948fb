"""A warning by time says the working time left ("30 minutes left on first response", "quedan 30
minutos de primera respuesta"), in a page and in a storm's digest line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support import message_facts
from worker.notify.messages import MessageFacts, render, render_digest

NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def facts(**fields: object) -> MessageFacts:
    """A P1 first-response warning at 30 minutes left; a warning's message is about its breach."""
    warning = {"kind": "warning", "due_at": NOW + timedelta(minutes=30)}
    return message_facts(**{**warning, "time_left": timedelta(minutes=30), **fields})


@pytest.mark.parametrize(
    ("language", "metric", "left", "headline"),
    [
        ("en", "first_response", timedelta(minutes=30), "30 minutes left on first response"),
        ("es", "first_response", timedelta(minutes=30), "quedan 30 minutos de primera respuesta"),
        ("en", "resolution", timedelta(hours=1), "1 hour left on resolution"),
        ("es", "resolution", timedelta(hours=1), "queda 1 hora de resolución"),
        ("es", "update", timedelta(minutes=1), "queda 1 minuto de actualización al cliente"),
        (
            "en",
            "resolution",
            timedelta(hours=2, minutes=30),
            "2 hours and 30 minutes left on resolution",
        ),
        (
            "es",
            "resolution",
            timedelta(hours=1, minutes=1),
            "quedan 1 hora y 1 minuto de resolución",
        ),
        (
            "en",
            "update",
            timedelta(hours=1, minutes=2, seconds=3),
            "1 hour, 2 minutes and 3 seconds left on customer update",
        ),
    ],
)
def test_the_title_says_the_time_left(
    language: str, metric: str, left: timedelta, headline: str
) -> None:
    message = render(language, facts(metric=metric, time_left=left), NOW)
    assert message.title == f"[P1] zendesk/4021: {headline}"


def test_the_body_shows_the_deadline_the_warning_is_about() -> None:
    body = render("es", facts(), NOW).body.splitlines()
    assert "Plazo: 2026-03-02 17:00 CET (quedan 30m)" in body


def test_a_percentage_warning_still_says_its_share() -> None:
    message = render("en", facts(percent=75, time_left=None), NOW)
    assert message.title == "[P1] zendesk/4021: 75% of the first response time used"


def test_a_digest_words_each_warning_by_its_own_time_left() -> None:
    """Two tickets warned at 30 and at 5 minutes left in one storm: each line says its own."""
    items = [
        facts(ticket_id="1", dedupe_key="1:page:oncall:0"),
        facts(ticket_id="2", dedupe_key="2:page:oncall:0", time_left=timedelta(minutes=5)),
    ]
    lines = render_digest("en", items, NOW).body.splitlines()
    assert lines[2].startswith("- [P1] zendesk/1: 30 minutes left on first response · ")
    assert lines[3].startswith("- [P1] zendesk/2: 5 minutes left on first response · ")
