"""The portals' integration settings: how each desk's Zendesk, Jira or Freshdesk maps to Escalera.

One YAML file (``ESCALERA_INTEGRATIONS``), one section per portal, validated like a policy file:
a problem is reported with the file, line and field. A portal without a section, or a process
without the file, maps with the adapters' defaults. What each field means, with an example:
docs/integrations.md; ``escalera integrations schema`` prints the JSON Schema editors validate
against, and ``escalera integrations check FILE`` checks a file.

Only names of environment variables live here, never a secret: the file can be shared and
committed like a policy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from shared.errors import IntegrationsError, Problem
from shared.events import Status
from shared.policy_file import parse_model

# The working example `escalera up` uses when ESCALERA_INTEGRATIONS is unset.
BUNDLED = Path(__file__).resolve().parent.parent / "deploy" / "integrations.yaml"

EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=256)]
Tier = Annotated[int, Field(ge=1, le=9)]
# a tag every portal takes as it is: no spaces or commas (Zendesk splits tags on them, Jira
# refuses them in a label); `{tier}` is filled in
_TAG = re.compile(r"(?:[a-z0-9_\-.:]|\{tier\})+")


def _tag(value: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError(
            "a tag is lower-case letters, digits and _ - . : only (no spaces), with {tier} "
            "standing for the tier, e.g. sla_breached or escalated_tier{tier}"
        )
    return value


NoteTag = Annotated[str, Field(max_length=80), AfterValidator(_tag)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Lookup(_Strict):
    """Where a ticket's customer, plan or time zone is read from in the portal's payload."""

    source: Literal["organization", "field", "tag"] = Field(
        alias="from",
        description="organization: the ticket's organization (Jira: `organization_field`); "
        "field: a custom field, named by `field`; tag: the first tag starting with `prefix`, "
        "the rest of the tag being the value",
    )
    field: Name | None = Field(None, description="the custom field's id or key (from: field)")
    prefix: Name | None = Field(None, description="the tag's prefix, e.g. `plan_` (from: tag)")

    @model_validator(mode="after")
    def _what_the_source_needs(self) -> Self:
        if self.source == "field" and self.field is None:
            raise ValueError("from: field needs `field:` (the custom field's id or key)")
        if self.source == "tag" and self.prefix is None:
            raise ValueError("from: tag needs `prefix:` (e.g. plan_ for the tag plan_gold)")
        return self


class Portal(_Strict):
    """What every portal's section may say."""

    secret_env: EnvName | None = Field(
        None,
        description="the variable holding the webhook secret (default ESCALERA_<PORTAL>_SECRET)",
    )
    api_user_env: EnvName | None = Field(
        None, description="the variable holding the REST API user (e-mail), for sync and notes"
    )
    api_token_env: EnvName | None = Field(
        None, description="the variable holding the REST API token, for sync and notes"
    )
    base_url: HttpUrl | None = Field(
        None, description="the portal's address, e.g. https://acme.zendesk.com"
    )
    default_priority: Name | None = Field(
        None,
        description="the priority of a ticket the portal sends without one (an e-mail ticket); "
        "unset: the policy's default_priority",
    )
    priorities: dict[Name, Name] = Field(
        default_factory=dict,
        description="portal priority -> policy priority (case and accents ignored)",
    )
    statuses: dict[Name, Status] = Field(
        default_factory=dict,
        description="portal status (name or id, custom ones included) -> "
        "new, open, pending, on_hold, solved or closed",
    )
    groups: dict[Name, Tier] = Field(
        default_factory=dict,
        description="group (name or id) -> support tier: assigning the ticket to the group "
        "escalates it",
    )
    customer: Lookup | None = Field(None, description="where the customer comes from")
    plan: Lookup | None = Field(None, description="where the plan comes from")
    timezone: Lookup | None = Field(None, description="where the customer's time zone comes from")
    breach_tag: NoteTag | None = Field(
        "sla_breached",
        description="the tag (Jira: label) the write-back channel adds to a ticket with its "
        "breach note; null: none",
    )
    escalation_tag: NoteTag | None = Field(
        "escalated_tier{tier}",
        description="the tag the write-back channel adds with an escalation note, `{tier}` "
        "standing for the tier; null: none",
    )


class Zendesk(Portal):
    """Zendesk's event payloads name ids (groups, organizations, custom statuses) and carry the
    ticket's tags, but no custom field values: a lookup can read the organization or a tag."""

    NO_CUSTOM_FIELDS: ClassVar[str] = (
        "Zendesk's event webhooks carry no custom field values: use from: tag (each drop-down "
        "option adds its tag to the ticket) or from: organization"
    )

    @field_validator("customer", "plan", "timezone")
    @classmethod
    def _no_custom_fields(cls, lookup: Lookup | None) -> Lookup | None:
        if lookup is not None and lookup.source == "field":
            raise ValueError(cls.NO_CUSTOM_FIELDS)
        return lookup


class Freshdesk(Portal):
    pass


class Jira(Portal):
    organization_field: Name | None = Field(
        None, description="the custom field holding JSM organizations, e.g. customfield_10002"
    )
    group_field: Name | None = Field(
        None,
        description="the custom field holding the ticket's group, e.g. customfield_10060 (a "
        "group picker, a select list or the Team field; different on every site): its value is "
        "the ticket's group, which `groups` maps to a tier. Unset: no group",
    )
    sync_jql: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        None,
        description="the JQL `escalera sync` narrows its search with, e.g. `project in (IT, HR)`; "
        "unset: every issue the API account can browse",
    )
    public_comments: Literal["jsd_public", "unrestricted", "all"] = Field(
        "jsd_public",
        description="which comments count as public: jsd_public (JSM's jsdPublic flag: shared "
        "with the customer), unrestricted (no visibility restriction), all",
    )


class Integrations(_Strict):
    """The whole file: one optional section per portal."""

    zendesk: Zendesk | None = None
    jira: Jira | None = None
    freshdesk: Freshdesk | None = None

    def portal(self, source: str) -> Portal | None:
        found = getattr(self, source, None)
        return found if isinstance(found, Portal) else None


NONE = Integrations()


def load_integrations(path: str | Path | None) -> Integrations:
    """The file's settings (`NONE` for no file); `IntegrationsError` names line and field."""
    if path is None:
        return NONE
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(None, "", f"cannot read the file: {exc.strerror}")
        raise IntegrationsError(str(path), [problem]) from exc
    return parse_integrations(text, str(path))


def parse_integrations(text: str, name: str = "<integrations>") -> Integrations:
    if not text.strip():
        return NONE
    return parse_model(
        text,
        name,
        Integrations,
        IntegrationsError,
        kind="an integration settings file",
        keys="zendesk:, jira:, freshdesk:",
    )


def json_schema() -> str:
    """The file's JSON Schema, for an editor's YAML language server."""
    schema: dict[str, Any] = Integrations.model_json_schema(by_alias=True)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "Escalera integration settings"
    return json.dumps(schema, indent=2)
