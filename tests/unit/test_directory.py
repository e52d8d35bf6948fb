"""Recipients from the ticket, the pure parts: a route's `to: [assignee, group]` finds channels in
the directory (names folded), falls back to the route's channels and says so, and a policy check
refuses a directory or a route naming what the policy does not declare."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.directory import EMPTY, Directories, Directory, Missing, resolve
from shared.directory_file import DirectoryError, load_directory, parse_directory
from shared.errors import PolicyError
from shared.policy_file import parse_policy
from shared.policy_routes import RouteSpec
from tests.support import ROOT, preset_text_without_notifications
from worker.notify.routing import channels_of

BASE = (ROOT / "tests" / "fixtures" / "contract-example.yaml").read_text()
ROUTES = """
channels: {desk: {}, billing_team: {}, ana_mail: {}, leads: {}, oncall: {}}
directory:
  groups: {Facturación: billing_team}
  agents: {"ana@acme.example": ana_mail}
routes:
  - {name: owners, when: {kinds: [breach]}, to: [assignee, group], channels: [desk]}
  - name: chain
    when: {kinds: [escalation]}
    steps:
      - {to: [assignee], channels: [desk], ack_within: 10m}
      - {to: [group], ack_within: 10m}
      - {channels: [oncall]}
"""
DESK = Directories(
    Directory(groups={"Facturación": "billing_team"}, agents={"ana@acme.example": "ana_mail"})
)
DECLARED = {"desk", "billing_team", "ana_mail"}


def test_the_assignee_and_the_group_are_told_on_their_directory_channels() -> None:
    told = resolve(
        ["assignee", "group"],
        ["desk"],
        group="Facturación",
        assignee="ana@acme.example",
        directory=DESK,
        declared=DECLARED,
    )
    assert (told.channels, told.missing) == (["ana_mail", "billing_team"], [])


@pytest.mark.parametrize(
    ("group", "assignee"),
    [("facturacion", "ANA@acme.example"), ("  FACTURACIÓN ", "Ana@Acme.Example")],
)
def test_names_match_as_the_sla_conditions_match_them(group: str, assignee: str) -> None:
    """Case and accents aside, as a portal may spell them."""
    told = resolve(
        ["group", "assignee"],
        ["desk"],
        group=group,
        assignee=assignee,
        directory=DESK,
        declared=DECLARED,
    )
    assert told.channels == ["billing_team", "ana_mail"]


def test_an_assignee_not_in_the_directory_goes_to_the_routes_channels_and_says_so() -> None:
    told = resolve(
        ["assignee", "group"],
        ["desk"],
        group="Facturación",
        assignee="bo@acme.example",
        directory=DESK,
        declared=DECLARED,
    )
    assert told.channels == ["billing_team", "desk"]
    (missing,) = told.missing
    assert missing.say() == "assignee bo@acme.example not in the directory: sent to desk"


def test_a_ticket_with_no_assignee_and_a_channel_not_declared_fall_back_too() -> None:
    told = resolve(
        ["assignee", "group"],
        ["desk"],
        group="Facturación",
        assignee=None,
        directory=DESK,
        declared={"desk"},
    )
    assert told.channels == ["desk"]
    assert [m.say() for m in told.missing] == [
        "no assignee: sent to desk",
        "group Facturación: channel billing_team is not declared: sent to desk",
    ]


def test_the_policys_entry_wins_over_the_operators_file() -> None:
    both = Directories(
        Directory(groups={"Billing": "billing_team"}),
        Directory(groups={"billing": "desk", "Soporte": "ana_mail"}),
    )
    assert both.channel_for("group", "BILLING") == "billing_team"
    assert both.channel_for("group", "soporte") == "ana_mail"
    assert both.channel_for("assignee", "Soporte") is None  # agents and groups apart


def test_routes_and_steps_resolve_through_the_policy_directory_and_the_file() -> None:
    policy = parse_policy(BASE + ROUTES, "policy.yaml")
    owners, chain = policy.routes
    told = channels_of(
        policy, owners, 0, group="Soporte", assignee="Ana@acme.example", directory=EMPTY
    )
    assert told.channels == ["ana_mail", "desk"]
    assert told.missing == [Missing("group", "Soporte", ("desk",))]
    file = Directory(groups={"soporte": "leads"})
    told = channels_of(
        policy, owners, 0, group="Soporte", assignee="ana@acme.example", directory=file
    )
    assert (told.channels, told.missing) == (["ana_mail", "leads"], [])
    # a chain: step 1 the assignee, step 2 the group (nobody to fall back to), step 3 on call
    ticket = {"group": "Otro", "assignee": "ana@acme.example", "directory": EMPTY}
    assert channels_of(policy, chain, 0, **ticket).channels == ["ana_mail"]  # type: ignore[arg-type]
    step2 = channels_of(policy, chain, 1, **ticket)  # type: ignore[arg-type]
    assert step2.channels == []
    assert (
        step2.missing[0].say()
        == "group Otro not in the directory: sent to nobody (the route has no channels)"
    )
    assert channels_of(policy, chain, 2, **ticket).channels == ["oncall"]  # type: ignore[arg-type]


def test_a_plain_routes_repeat_goes_where_its_first_message_went() -> None:
    policy = parse_policy(
        BASE + ROUTES.replace("channels: [desk]}", "channels: [desk], repeat: {every: 15m}}", 1),
        "policy.yaml",
    )
    owners = policy.routes[0]
    again = channels_of(
        policy, owners, 1, group=None, assignee=None, directory=EMPTY, channel="ana_mail"
    )
    assert (again.channels, again.missing) == (["ana_mail"], [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("{Facturación: billing_team}", "{Facturación: billing_slack}"),
            "policy.yaml:{line}: directory.groups.Facturación: unknown channel 'billing_slack' "
            "(known: desk, billing_team, ana_mail, leads, oncall)",
        ),
        (
            ("to: [assignee, group], channels: [desk]}", "to: [manager]}"),
            "policy.yaml:{line}: routes[0].to[0]: Input should be 'assignee' or 'group'",
        ),
        (
            ("{to: [group], ack_within: 10m}", "{ack_within: 10m}"),
            "policy.yaml:{line}: routes[1].steps[1].channels: a step needs `channels` or `to`",
        ),
    ],
)
def test_policy_check_names_the_line_and_field_of_a_directory_or_recipient_problem(
    change: tuple[str, str], message: str
) -> None:
    text = BASE + ROUTES.replace(*change)
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "policy.yaml")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if change[1] in row)
    assert str(raised.value) == message.format(line=line)


def test_the_directory_file_is_refused_with_its_line_and_field(tmp_path: Path) -> None:
    """Read at start like the integration settings: a bad file stops the process, saying where."""
    path = tmp_path / "directory.yaml"
    path.write_text("groups:\n  Billing: billing_team\n  Soporte: Desk\nagents: {}\n")
    with pytest.raises(DirectoryError) as raised:
        load_directory(path)
    assert str(raised.value) == (
        f"{path}:3: groups.Soporte: 'Desk': a channel name is lower-case letters, digits and _ "
        "(it names a variable)"
    )
    with pytest.raises(DirectoryError, match=r"d.yaml:1: groups: 'billing' and 'Billing' are one"):
        parse_directory("groups:\n  Billing: desk\n  billing: desk\n", "d.yaml")
    assert load_directory(None) == EMPTY
    path.write_text("groups: {Billing: billing_team}\n")
    assert load_directory(path).channel_for("group", "billing") == "billing_team"


def test_the_example_of_the_docs_loads_and_tells_whom_it_says() -> None:
    """docs/policy-format.md's example: Ana's Billing breach reaches Ana and billing; Bo's
    reaches billing and the desk; the chain's first step Ana, its second nobody for Soporte."""
    docs = (ROOT / "docs" / "policy-format.md").read_text()
    section = docs.split("## Recipients from the ticket", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(preset_text_without_notifications("soporte-completo") + example)
    owners, chain = policy.routes

    def told(route: RouteSpec, n: int, group: str, assignee: str) -> list[str]:
        found = channels_of(policy, route, n, group=group, assignee=assignee, directory=EMPTY)
        return found.channels

    assert told(owners, 0, "Billing", "ana@acme.example") == ["ana_mail", "billing_team"]
    assert told(owners, 0, "billing", "bo@acme.example") == ["billing_team", "desk"]
    assert told(chain, 0, "Soporte", "ana@acme.example") == ["ana_mail"]
    assert told(chain, 1, "Soporte", "ana@acme.example") == []
    assert told(chain, 2, "Soporte", "ana@acme.example") == ["oncall_phone"]
