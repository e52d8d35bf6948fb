"""A page says what the ticket is about: its subject in the title, its group and assignee in the
body, in English and in Spanish, and a storm's digest line names each ticket's subject."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support import message_facts
from worker.notify.messages import SUBJECT_IN_TITLE, MessageFacts, render, render_digest

NOW = datetime(2026, 3, 2, 16, 25, tzinfo=UTC)
LONG = (
    "La impresora de la tercera planta no imprime los albaranes desde la actualización del "
    "controlador de ayer por la tarde"
)


def facts(**fields: object) -> MessageFacts:
    context = {"subject": "Printer on fire", "group": "Tier 2", "assignee": "Ana Pérez"}
    return message_facts(**{**context, **fields})


def test_english_title_carries_the_subject_and_body_the_group_and_assignee() -> None:
    message = render("en", facts(), NOW)
    assert message.title == '[P1] zendesk/4021: first response breached — "Printer on fire"'
    lines = message.body.splitlines()
    assert lines[:5] == [
        "Ticket: zendesk/4021 (premium)",
        "Subject: Printer on fire",
        "Customer: acme",
        "Group: Tier 2",
        "Assignee: Ana Pérez",
    ]


def test_spanish_title_carries_the_subject_cut_with_an_ellipsis() -> None:
    """A long subject is cut to keep the title readable; the body keeps it whole."""
    message = render("es", facts(subject=LONG, kind="warning", percent=75), NOW)
    shown = LONG[: SUBJECT_IN_TITLE - 1].rstrip() + "…"
    assert message.title == (
        f"[P1] zendesk/4021: 75% del tiempo de primera respuesta consumido — «{shown}»"
    )
    assert len(shown) <= SUBJECT_IN_TITLE and "\n" not in message.title
    assert f"Asunto: {LONG}" in message.body.splitlines()
    assert "Grupo: Tier 2" in message.body.splitlines()
    assert "Asignado a: Ana Pérez" in message.body.splitlines()


def test_a_ticket_without_context_reads_as_before() -> None:
    """No subject, group or assignee known: the title and body are those of before."""
    message = render("en", facts(subject=None, group=None, assignee=None), NOW)
    assert message.title == "[P1] zendesk/4021: first response breached"
    assert not any(
        line.startswith(("Subject", "Group", "Assignee")) for line in message.body.splitlines()
    )


def test_each_digest_line_names_its_ticket_subject_cut() -> None:
    items = [
        facts(),
        facts(ticket_id="4022", subject=LONG, dedupe_key="cp-18:p1-page:0"),
        facts(ticket_id="4023", subject=None, dedupe_key="cp-19:p1-page:0"),
    ]
    lines = render_digest("es", items, NOW).body.splitlines()[2:]
    assert lines[0].startswith("- [P1] zendesk/4021: primera respuesta incumplida — «Printer on")
    cut = LONG[: SUBJECT_IN_TITLE - 1].rstrip() + "…"
    assert f"— «{cut}» · Plazo:" in lines[1]
    assert lines[2].startswith("- [P1] zendesk/4023: primera respuesta incumplida · Plazo:")


@pytest.mark.parametrize("field", ["subject", "group", "assignee"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_a_forged_context_field_adds_no_line(field: str, language: str) -> None:
    """A stored subject, group or assignee with a newline (written before it was validated, or
    by hand) cannot add a fake acknowledgement line."""
    forged = "x\nAcknowledge: https://evil.example/ack?sig=1"
    honest = render(language, facts(), NOW)
    message = render(language, facts(**{field: forged}), NOW)
    assert "\n" not in message.title
    assert len(message.body.splitlines()) == len(honest.body.splitlines())
    assert not any(
        line.startswith("Acknowledge: https://evil") for line in message.body.splitlines()
    )
