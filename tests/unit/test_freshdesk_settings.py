"""A desk's Freshdesk integration settings reach the adapter: every mapping field takes effect.

The settings come as a desk writes them: the ``freshdesk:`` section of an integration settings
file (shared/integrations.py), read by `parse_integrations` and given to
`FreshdeskAdapter.from_settings`, as the ingest service does. The payloads are the rendered rule
bodies of tests/fixtures/webhooks/freshdesk/ (where their shapes come from: the module docstring
of tests/unit/test_adapter_freshdesk.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.evaluate import evaluate
from shared.events import EventType, Status
from shared.integrations import parse_integrations
from tests.support import ROOT, preset
from tests.unit.adapter_support import Fixtures, Runner, json_body
from worker.adapters.base import WebhookRequest
from worker.adapters.freshdesk import FreshdeskAdapter

FIXTURES = Fixtures("freshdesk")
RECEIVED = datetime(2025, 3, 4, 8, 47, 3, tzinfo=UTC)
GUIDE = ROOT / "docs" / "portals" / "freshdesk.md"


def delivery(payload: Any) -> WebhookRequest:
    """The request carrying ``payload`` with the shared secret (a test helper, not a test)."""
    return WebhookRequest(json_body(payload), {"x-escalera-webhook-secret": "s"}, RECEIVED)


RUN = Runner(FreshdeskAdapter(), delivery)
fixture = FIXTURES.load


def desk(section: str) -> FreshdeskAdapter:
    """The adapter of an integration settings file whose ``freshdesk:`` section is ``section``."""
    settings = parse_integrations("freshdesk:\n" + section, "integrations.yaml")
    return FreshdeskAdapter.from_settings(settings.freshdesk)


def one(payload: dict[str, Any], adapter: FreshdeskAdapter) -> Any:
    return RUN.one(payload, adapter)


def status_change(after: str, name: str) -> dict[str, Any]:
    return {
        **fixture("status_pending"),
        "triggered_event": f"{{status:{{from:2,to:{after}}}}}",
        "status": name,
    }


def test_custom_statuses_are_mapped_by_name_or_by_number() -> None:
    """An account's own statuses: "Waiting on Finance" by name, code 8 by number."""
    adapter = desk("  statuses:\n    Waiting on Finance: on_hold\n    '8': pending\n")
    assert one(status_change("9", "Waiting on Finance"), adapter).status is Status.ON_HOLD
    assert one(status_change("8", "Job Application"), adapter).status is Status.PENDING


def test_a_built_in_status_can_be_mapped_otherwise() -> None:
    """A desk whose "Pending" means waiting on a third party maps it to on_hold, by name or
    by code; the settings come before the built-in codes."""
    by_name = desk("  statuses:\n    Pending: on_hold\n")
    assert one(status_change("3", "Pending"), by_name).status is Status.ON_HOLD
    by_code = desk("  statuses:\n    '3': on_hold\n")
    assert one(status_change("3", "Pending"), by_code).status is Status.ON_HOLD
    assert one(status_change("3", "Pending"), desk("  {}\n")).status is Status.PENDING


def test_priorities_are_renamed_by_name_or_by_code() -> None:
    """``Urgent`` -> P1 by name; a change whose name rendered empty is renamed by its code."""
    adapter = desk("  priorities:\n    Urgent: P1\n    '3': P2\n")
    assert one(fixture("priority_changed"), adapter).priority == "P1"
    by_code = {**fixture("priority_changed"), "triggered_event": "{priority:{from:4,to:3}}"}
    assert one({**by_code, "priority": ""}, adapter).priority == "P2"
    assert one(fixture("created_with_context"), adapter).priority == "High"  # not mapped


def test_groups_give_tiers_by_name_or_by_id() -> None:
    """A group's tier by its name (case ignored) or by its id (``group_id`` in the body)."""
    adapter = desk("  groups:\n    l2 field services: 2\n    '80000123456': 1\n")
    assert one(fixture("group_changed"), adapter).tier == 2
    created = {**fixture("created_with_context"), "group": "", "group_id": "80000123456"}
    assert one(created, adapter).tier == 1


def test_default_priority_serves_a_ticket_created_without_one() -> None:
    """A creation whose priority rendered empty takes the section's default_priority (a policy
    priority); without the setting, the policy's default_priority decides."""
    payload = {**fixture("created_with_context"), "priority": ""}
    adapter = desk("  default_priority: P3\n")
    assert one(payload, adapter).priority == "P3"
    event = one(payload, FreshdeskAdapter())
    assert event.priority is None
    policy = preset("soporte-completo").model_copy(update={"default_priority": "P2"})
    assert evaluate(policy, [event], event.occurred_at).priority == "P2"


@pytest.mark.parametrize(
    ("section", "extra", "customer"),
    [
        ("", {}, "Fabrikam"),
        ("  customer: {from: organization}\n", {}, "Fabrikam"),
        ("  customer: {from: field, field: cf_account}\n", {"cf_account": "FAB-0042"}, "FAB-0042"),
        ("  customer: {from: tag, prefix: acct_}\n", {"tags": "printer, acct_fab"}, "fab"),
    ],
    ids=["default", "organization", "field", "tag"],
)
def test_the_customer_comes_from_where_the_settings_say(
    section: str, extra: dict[str, str], customer: str
) -> None:
    """The company by default or by ``organization``; a body key by ``field``; a tag's rest."""
    event = one({**fixture("created_with_context"), **extra}, desk(section or "  {}\n"))
    assert event.customer == customer


def test_the_plan_comes_from_a_tag_or_a_field() -> None:
    """``plan_gold`` gives gold by tag prefix; a custom field the body carries gives its value."""
    by_tag = desk("  plan: {from: tag, prefix: plan_}\n")
    assert one(fixture("created_with_context"), by_tag).plan == "gold"
    by_field = desk("  plan: {from: field, field: cf_plan}\n")
    assert one({**fixture("created_with_context"), "cf_plan": "Premium"}, by_field).plan == (
        "Premium"
    )
    assert one(fixture("created_with_context"), desk("  {}\n")).plan is None


def test_the_time_zone_comes_from_a_field_and_must_be_one() -> None:
    """An IANA zone in any case is taken in its own case; anything else is left out (the
    policy's zone applies) rather than stopping the ticket's clocks."""
    adapter = desk("  timezone: {from: field, field: cf_timezone}\n")
    created = fixture("created_with_context")
    assert one({**created, "cf_timezone": "europe/madrid"}, adapter).customer_timezone == (
        "Europe/Madrid"
    )
    assert one({**created, "cf_timezone": "Eastern Time"}, adapter).customer_timezone is None


def test_lookups_apply_to_the_creation_only() -> None:
    """Customer, plan and zone are the ticket's at creation (the SLA core reads them there)."""
    adapter = desk("  plan: {from: tag, prefix: plan_}\n")
    event = one(fixture("status_pending"), adapter)
    assert (event.type, event.customer, event.plan) == (EventType.STATUS_CHANGED, None, None)


def test_the_guides_example_section_validates_and_takes_effect() -> None:
    """The full example of docs/portals/freshdesk.md is a valid file whose settings all reach
    the adapter."""
    example = re.search(r"```yaml\n(freshdesk:\n.*?)```", GUIDE.read_text(), re.S)
    assert example is not None
    settings = parse_integrations(example.group(1), str(GUIDE))
    adapter = FreshdeskAdapter.from_settings(settings.freshdesk)
    created = {
        **fixture("created_with_context"),
        "priority": "Urgent",
        "cf_timezone": "America/Mexico_City",
    }
    event = one(created, adapter)
    assert (event.priority, event.tier, event.plan, event.customer_timezone) == (
        "P1",
        1,
        "gold",
        "America/Mexico_City",
    )
    waiting = one(status_change("6", "Waiting on Customer"), adapter)
    assert waiting.status is Status.PENDING
