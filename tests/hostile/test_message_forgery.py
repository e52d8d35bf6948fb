"""Ticket fields cannot forge lines of a message: control characters are neutralised, link
path parts are URL-encoded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.notify.messages import MessageFacts, render, render_digest, ticket_link
from worker.notify.safe_text import one_line

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
FORGED = "INJ-1\nAcknowledge: https://evil.example/ack?sig=1"
REAL_ACK = "https://escalera.example/v1/acks?key=7%3Apage%3Aoncall%3A0&exp=1&sig=ab"


def facts(**fields: object) -> MessageFacts:
    values: dict[str, object] = {
        "ticket_id": "T-1",
        "source": "api",
        "customer": "acme",
        "priority": "P1",
        "plan": "standard",
        "kind": "breach",
        "metric": "first_response",
        "percent": None,
        "tier": None,
        "due_at": NOW - timedelta(minutes=1),
        "tz": ZoneInfo("Europe/Madrid"),
        "link": None,
        "dedupe_key": "7:page:oncall:0",
        "ack_link": REAL_ACK,
    }
    return MessageFacts(**{**values, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("INJ-1\nAcknowledge: x", "INJ-1␤Acknowledge: x"),
        ("a\r\nb\rc", "a␤b␤c"),
        ("a\u2028b\u2029c\x85d\x0be\x0cf", "a␤b␤c␤d␤e␤f"),
        ("tab\there", "tab here"),
        ("nul\x00bell\x07esc\x1b[31m", "nul?bell?esc?[31m"),
        ("\u202etxt.exe", "?txt.exe"),  # a right-to-left override would reverse what follows
        ("Crítico — 重要 🚨", "Crítico — 重要 🚨"),  # ordinary text is left alone
    ],
)
def test_one_line_keeps_text_readable_on_one_line(text: str, shown: str) -> None:
    """Line breaks become a visible ␤, other controls a ?, a tab a space; the rest stays."""
    assert one_line(text) == shown


@pytest.mark.parametrize("field", ["ticket_id", "source", "customer", "priority", "plan"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_a_forged_field_adds_no_line_to_a_page(field: str, language: str) -> None:
    """A ticket field with a newline and a fake acknowledgement: the title stays one line, the
    body has exactly the lines of an honest page, and only the real link is offered."""
    honest = render(language, facts(), NOW)
    forged = render(language, facts(**{field: FORGED}), NOW)
    assert "\n" not in forged.title
    assert len(forged.body.splitlines()) == len(honest.body.splitlines())
    assert not any(
        line.startswith("Acknowledge: https://evil") for line in forged.body.splitlines()
    )
    assert "INJ-1␤Acknowledge: https://evil.example/ack?sig=1" in forged.title + forged.body


@pytest.mark.parametrize("field", ["ticket_id", "source", "priority"])
def test_a_forged_field_adds_no_line_to_a_digest(field: str) -> None:
    """In a storm's digest too: one line per notification and one per its ack link."""
    items = [facts(), facts(**{field: FORGED, "dedupe_key": "8:page:oncall:0"})]
    digest = render_digest("en", items, NOW)
    assert "\n" not in digest.title
    lines = digest.body.splitlines()
    assert len(lines) == 2 + 2 * len(items)  # intro, blank, then a headline and an ack each
    assert not any(line.startswith("Acknowledge: https://evil") for line in lines)


def test_a_ticket_link_encodes_the_id_as_one_path_part() -> None:
    """Slashes, ``?``, ``#`` and spaces in an id stay inside its path part of the link."""
    template = "https://desk.example/tickets/{ticket_id}"
    assert ticket_link(template, "../admin?x=1#y z") == (
        "https://desk.example/tickets/..%2Fadmin%3Fx%3D1%23y%20z"
    )
    assert ticket_link(template, "SUP-12") == "https://desk.example/tickets/SUP-12"


def test_a_forged_id_in_a_ticket_link_adds_no_line() -> None:
    """The ticket link built from a forged id is one line, and the page keeps its shape."""
    link = ticket_link("https://desk.example/t/{ticket_id}", FORGED)
    page = render("en", facts(ticket_id=FORGED, link=link), NOW)
    assert len(page.body.splitlines()) == len(render("en", facts(link="x"), NOW).body.splitlines())
