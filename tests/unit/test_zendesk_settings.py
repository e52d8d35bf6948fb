"""The Zendesk section of the integration settings: every mapping field it has takes effect.

Each test writes the section as a desk would (YAML, `parse_integrations`), builds the adapter the
service builds from it, and runs a payload shaped after Zendesk's "Ticket events" reference
(tests/fixtures/webhooks/zendesk/SOURCES.md says which source each file follows).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.errors import IntegrationsError
from shared.events import Event, EventType, Status
from shared.integrations import parse_integrations
from tests.unit.adapter_support import Fixtures, json_body
from worker.adapters.base import WebhookRequest
from worker.adapters.signatures import sign_zendesk
from worker.adapters.zendesk import ZendeskAdapter
from worker.api.service import webhooks

FIXTURES = Fixtures("zendesk")
SECRET = "zendesk-signing-secret"
RECEIVED = datetime(2025, 3, 4, 9, 30, 30, tzinfo=UTC)


def adapter(section: str) -> ZendeskAdapter:
    """The adapter for a ``zendesk:`` section written in YAML (a test helper)."""
    return ZendeskAdapter.from_settings(parse_integrations(f"zendesk:\n{section}").zendesk)


def one(payload: dict[str, Any], zendesk: ZendeskAdapter) -> Event:
    """The event ``zendesk`` makes of ``payload``, delivered signed (a test helper)."""
    body = json_body(payload)
    [event] = zendesk.to_events(
        payload, WebhookRequest(body, sign_zendesk(body, SECRET, RECEIVED), RECEIVED)
    )
    return event


def email_ticket(**detail: Any) -> dict[str, Any]:
    """The e-mail ticket's created payload with ``detail`` fields replaced (a test helper)."""
    payload = FIXTURES.load("ticket_created_email")
    payload["detail"].update(detail)
    return payload


def test_default_priority_gives_an_email_ticket_its_priority() -> None:
    """default_priority: the created event of a ticket Zendesk sends without one carries it."""
    assert one(email_ticket(), adapter("  default_priority: P3\n")).priority == "P3"


def test_priorities_rename_zendesks_names() -> None:
    """priorities: Zendesk's ``HIGH`` (any case) becomes the policy's ``P2``."""
    event = one(FIXTURES.load("ticket_created"), adapter("  priorities: {high: P2}\n"))
    assert event.priority == "P2"


def test_statuses_map_a_custom_status_id_and_a_zendesk_status_name() -> None:
    """statuses: a custom status id (from Admin Center) and a built-in name both map."""
    zendesk = adapter('  statuses: {"3300222999": on_hold, solved: closed}\n')
    custom = one(FIXTURES.load("custom_status_changed"), zendesk)
    assert (custom.type, custom.status) == (EventType.STATUS_CHANGED, Status.ON_HOLD)
    solved = one(FIXTURES.load("status_changed"), zendesk)
    assert (solved.type, solved.status) == (EventType.CLOSED, Status.CLOSED)


def test_groups_give_the_tier_of_a_group_id() -> None:
    """groups: the ticket created in, or moved to, a group id mapped to tier 2 is at tier 2."""
    zendesk = adapter('  groups: {"3300445566": 1, "3300445599": 2}\n')
    assert one(FIXTURES.load("ticket_created"), zendesk).tier == 1
    assert one(FIXTURES.load("group_assignment_changed"), zendesk).tier == 2


def test_the_customer_is_the_organization_unless_the_settings_say_otherwise() -> None:
    """customer: by default (and with from: organization) the organization's id."""
    for section in ("  default_priority: P3\n", "  customer: {from: organization}\n"):
        assert one(email_ticket(), adapter(section)).customer == "3300776655"


def test_customer_plan_and_time_zone_from_tag_prefixes() -> None:
    """customer, plan, timezone from: tag: the rest of the first tag with the prefix. Zendesk
    lower-cases tags; the time zone comes back in its IANA spelling."""
    zendesk = adapter(
        "  customer: {from: tag, prefix: customer_}\n"
        "  plan: {from: tag, prefix: plan_}\n"
        "  timezone: {from: tag, prefix: tz_}\n"
    )
    tags = ["billing", "customer_acme", "plan_gold", "tz_america/mexico_city"]
    event = one(email_ticket(tags=tags), zendesk)
    assert (event.customer, event.plan, event.customer_timezone) == (
        "acme",
        "gold",
        "America/Mexico_City",
    )


def test_a_tag_lookup_that_finds_no_tag_leaves_the_field_to_the_policy() -> None:
    """No tag with the prefix: no plan on the event, so the customer's or default plan applies."""
    event = one(email_ticket(tags=["billing"]), adapter("  plan: {from: tag, prefix: plan_}\n"))
    assert event.plan is None


@pytest.mark.parametrize("field", ["customer", "plan", "timezone"])
def test_a_custom_field_lookup_is_refused_with_the_way_out(field: str) -> None:
    """from: field cannot work: Zendesk's event payloads carry no custom field values. The
    file is refused at start, naming line and field, and pointing to from: tag."""
    text = f"zendesk:\n  default_priority: P3\n  {field}: {{from: field, field: '360012345'}}\n"
    with pytest.raises(IntegrationsError) as refused:
        parse_integrations(text, "integrations.yaml")
    assert str(refused.value).startswith(f"integrations.yaml:3: zendesk.{field}: ")
    assert "from: tag" in str(refused.value)


def test_the_service_builds_zendesk_from_the_file_with_its_secret_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESCALERA_INTEGRATIONS' zendesk section reaches the running service: its secret_env
    names the secret, and its mappings shape the events."""
    path = tmp_path / "integrations.yaml"
    path.write_text(
        "zendesk:\n  secret_env: ZD_WEBHOOK_SECRET\n  default_priority: P3\n"
        "  plan: {from: tag, prefix: plan_}\n"
    )
    monkeypatch.setenv("ZD_WEBHOOK_SECRET", "the-secret-the-file-names")
    hook = webhooks(Settings(integrations=path))["zendesk"]
    assert hook.secret == "the-secret-the-file-names"
    assert isinstance(hook.adapter, ZendeskAdapter)
    event = one(email_ticket(), hook.adapter)
    assert (event.priority, event.plan) == ("P3", "gold")


def test_a_tag_that_names_no_time_zone_is_left_out() -> None:
    """tz_mars is no IANA zone: the event carries none (the policy's zone applies) rather than
    one the clocks cannot use."""
    zendesk = adapter("  timezone: {from: tag, prefix: tz_}\n")
    assert one(email_ticket(tags=["tz_mars"]), zendesk).customer_timezone is None
