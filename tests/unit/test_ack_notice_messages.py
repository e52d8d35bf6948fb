"""The notice an escalation chain's earlier steps get when someone acknowledges it: who, when,
and that nobody else is told; a name typed in the acknowledgement form stays on one line."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support import message_facts
from worker.notify.messages import render

NOW = datetime(2026, 3, 2, 16, 27, tzinfo=UTC)


def test_english_notice_says_who_acknowledged_and_that_the_escalation_stops() -> None:
    facts = message_facts(
        acknowledged_by="Marta Ruiz",
        acknowledged_at=datetime(2026, 3, 2, 16, 27, tzinfo=UTC),
        dedupe_key="17:p1-chain:team_chat:acknowledged",
    )
    message = render("en", facts, NOW)
    assert message.title == "[P1] zendesk/4021: acknowledged by Marta Ruiz: first response breached"
    assert message.body.splitlines()[:2] == [
        "Acknowledged by Marta Ruiz at 2026-03-02 17:27 CET: the escalation stops, nobody else "
        "is told.",
        "Ticket: zendesk/4021 (premium)",
    ]


def test_a_name_with_a_line_break_cannot_add_a_line() -> None:
    """The name comes from a form anyone with the link can fill: it cannot forge a line
    (a fake link) in the notice."""
    facts = message_facts(
        acknowledged_by="Eve\nAcknowledge: https://evil.example/",
        acknowledged_at=NOW,
    )
    message = render("en", facts, NOW)
    assert "\n" not in message.title
    assert not any(line.startswith("Acknowledge:") for line in message.body.splitlines())
