"""The portals' integration settings file: refused with its line and field, used when valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from shared.errors import IntegrationsError
from shared.events import Status
from shared.integrations import BUNDLED, load_integrations, parse_integrations
from shared.names import fold
from shared.policy_file import load_policy
from tests.support import ROOT
from worker.api.service import webhooks
from worker.cli import main

GOOD = """\
zendesk:
  default_priority: P3
  statuses: {"Waiting on vendor": on_hold}
  groups: {"Tier 2": 2}
  plan: {from: tag, prefix: plan_}
jira:
  organization_field: customfield_10002
  secret_env: JSM_WEBHOOK_SECRET
"""


def test_every_problem_is_named_by_line_and_field() -> None:
    text = "zendesk:\n  groups: {T2: 12}\n  plan: {from: tag}\njira:\n  colour: red\n"
    with pytest.raises(IntegrationsError) as refused:
        parse_integrations(text, "integrations.yaml")
    assert str(refused.value).splitlines() == [
        "integrations.yaml:2: zendesk.groups.T2: Input should be less than or equal to 9",
        "integrations.yaml:3: zendesk.plan: from: tag needs `prefix:` (e.g. plan_ for the tag "
        "plan_gold)",
        "integrations.yaml:5: jira.colour: Extra inputs are not permitted",
    ]


def test_a_key_written_twice_is_refused_not_silently_overwritten() -> None:
    with pytest.raises(IntegrationsError, match=r":3: zendesk.default_priority: appears twice"):
        parse_integrations("zendesk:\n  default_priority: P2\n  default_priority: P3\n")


def test_check_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text("freshdesk:\n  statuses: {Escalated: urgent}\n")
    assert main(["integrations", "check", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert f"{good}: ok (zendesk, jira)" in out
    assert f"{bad}:2: freshdesk.statuses.Escalated: Input should be" in err


def test_the_service_maps_each_portal_as_its_section_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "integrations.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("JSM_WEBHOOK_SECRET", "a-secret-the-settings-name")
    hooks = webhooks(Settings(integrations=path, zendesk_secret="zendesk-secret-1234"))
    zendesk = hooks["zendesk"].adapter
    assert zendesk.statuses[fold("Waiting on vendor")] is Status.ON_HOLD  # type: ignore[attr-defined]
    assert hooks["zendesk"].secret == "zendesk-secret-1234"
    assert hooks["jira"].secret == "a-secret-the-settings-name"
    assert hooks["freshdesk"].secret is None


def test_no_file_maps_every_portal_by_default() -> None:
    assert load_integrations(None).portal("zendesk") is None


def test_the_example_escalera_up_uses_validates_and_names_the_presets_priorities() -> None:
    """`escalera up` maps every portal with deploy/integrations.yaml: each priority it maps to
    (and its default) must be one the default preset knows, or those tickets would be refused."""
    bundled = load_integrations(BUNDLED)
    policy = load_policy(ROOT / "deploy" / "policies" / "soporte-completo.yaml")
    for name in ("zendesk", "jira", "freshdesk"):
        portal = bundled.portal(name)
        assert portal is not None, name
        named = [*portal.priorities.values(), portal.default_priority]
        unknown = [p for p in named if p is not None and policy.priority_named(p) is None]
        assert unknown == [], name
