"""Notification routes and messages: who is told, and in which words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import PolicyError
from shared.policy_file import parse_policy
from shared.policy_routes import channel_env
from tests.support import ROOT, message_facts
from worker.notify.messages import MessageFacts, render
from worker.notify.routing import Fired, routes_for

BASE = (ROOT / "tests" / "fixtures" / "contract-example.yaml").read_text()
ROUTES = """
channels:
  oncall_phone: {description: "paging bridge"}
  support_email: {}
  leads_slack: {}
routes:
  - name: p1-page
    when: {priorities: [critical], kinds: [breach, escalation]}
    channels: [oncall_phone]
    repeat: {every: 15m, limit: 3}
    fallback: leads_slack
  - name: warnings
    when: {kinds: [warning]}
    channels: [support_email]
  - name: premium-breaches
    when: {kinds: [breach], plans: [premium]}
    channels: [leads_slack, support_email]
ticket_links: {zendesk: "https://acme.zendesk.com/agent/tickets/{ticket_id}"}
"""


def policy_with(routes: str = ROUTES):  # type: ignore[no-untyped-def]
    return parse_policy(BASE + routes, "policy.yaml")


@pytest.mark.parametrize(
    ("fired", "expected"),
    [
        (Fired("breach", "first_response", None, "P1", "standard"), ["p1-page"]),
        (Fired("escalation", "escalation", 2, "P1", "standard"), ["p1-page"]),
        (Fired("warning", "first_response", None, "P1", "standard"), ["warnings"]),
        (Fired("breach", "resolution", None, "P1", "premium"), ["p1-page", "premium-breaches"]),
        (Fired("breach", "resolution", None, "P3", "standard"), []),
    ],
)
def test_routes_select_by_kind_priority_and_plan(fired: Fired, expected: list[str]) -> None:
    """A P1 breach pages; warnings e-mail; premium breaches also reach the leads; a P3 breach nobody."""
    assert [r.name for r in routes_for(policy_with(), fired)] == expected


def test_channel_urls_come_from_the_environment_by_name() -> None:
    """A channel named in the file reads its Apprise URL from ESCALERA_CHANNEL_<NAME>."""
    assert channel_env("oncall_phone") == "ESCALERA_CHANNEL_ONCALL_PHONE"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            ROUTES.replace("channels: [oncall_phone]", "channels: [pager]"),
            "routes[0].channels[0]: unknown channel 'pager'",
        ),
        (
            ROUTES.replace("fallback: leads_slack", "fallback: nobody"),
            "routes[0].fallback: unknown channel 'nobody'",
        ),
        (
            ROUTES.replace("priorities: [critical]", "priorities: [apocalyptic]"),
            "routes[0].when.priorities[0]: unknown priority",
        ),
        (
            ROUTES.replace("name: warnings", "name: p1-page"),
            "routes[1].name: another route is already named 'p1-page'",
        ),
        (
            ROUTES.replace("{ticket_id}", "{id}"),
            "ticket_links.zendesk: a ticket link needs {ticket_id}",
        ),
        (
            ROUTES.replace("oncall_phone: {description", "Oncall-Phone: {description"),
            "channels.Oncall-Phone",
        ),
    ],
)
def test_bad_routes_are_refused_with_the_field(broken: str, message: str) -> None:
    """Routes naming unknown channels, priorities or duplicate names are refused at load."""
    with pytest.raises(PolicyError) as caught:
        policy_with(broken)
    assert message in str(caught.value)


def facts(**overrides: object) -> MessageFacts:
    return message_facts(link="https://acme.zendesk.com/agent/tickets/4021", **overrides)


def test_english_breach_message_has_everything_the_on_call_needs() -> None:
    """Ticket, customer, priority, the deadline in the calendar's zone, how overdue, link, key."""
    message = render("en", facts(), datetime(2026, 3, 2, 16, 25, tzinfo=UTC))
    assert message.title == "[P1] zendesk/4021: first response breached"
    assert "Deadline: 2026-03-02 17:00 CET (25m overdue)" in message.body
    assert "Customer: acme" in message.body
    assert "Open the ticket: https://acme.zendesk.com/agent/tickets/4021" in message.body
    assert "Notification: cp-17:p1-page:0" in message.body


def test_spanish_warning_and_escalation_messages() -> None:
    """A policy in Spanish gets its warnings and escalations in Spanish, with time left."""
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    warning = render("es", facts(kind="warning", percent=75), now)
    assert warning.title == "[P1] zendesk/4021: 75% del tiempo de primera respuesta consumido"
    assert "Plazo: 2026-03-02 17:00 CET (quedan 1h)" in warning.body
    escalation = render(
        "es",
        facts(kind="escalation", metric="escalation", tier=2, due_at=now - timedelta(minutes=1)),
        now,
    )
    assert escalation.title.endswith("escalar a nivel 2")
