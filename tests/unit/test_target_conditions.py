"""Targets chosen by conditions (``targets[].when``): the first match in file order wins, and
``policy check`` refuses a target that an earlier one hides.

Each target of the desk below has its own first-response time, so a ticket's first-response
target says which one it got.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import PolicyError
from shared.policy import Policy
from shared.policy_file import parse_policy
from tests.support import Ticket

HEAD = """\
name: desk
calendars: {always: 24x7}
priorities: {P1: {}, P2: {}}
plans: {standard: {calendar: always}, gold: {calendar: always}}
default_plan: standard
"""
DESK = (
    HEAD
    + """\
targets:
  - name: billing-vip
    when: {groups: [Billing], tags: {any: [vip, gold-customer]}}
    priorities: [P1, P2]
    first_response: 10m
  - name: outage-vip
    when: {tags: {all: [vip, outage]}}
    priorities: [P1, P2]
    first_response: 20m
  - name: billing
    when: {groups: [Billing]}
    priorities: [P1, P2]
    first_response: 30m
  - name: email-incident
    when: {channels: [email], ticket_types: [incident]}
    priorities: [P1, P2]
    first_response: 40m
  - name: acme-zendesk
    when: {customers: [acme], sources: [zendesk]}
    priorities: [P1, P2]
    first_response: 50m
  - name: gold-quiet
    when: {tags: {none: [vip]}}
    plans: [gold]
    priorities: [P1, P2]
    first_response: 60m
  - name: fallback
    priorities: [P1, P2]
    first_response: 2h
"""
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def policy(text: str = DESK) -> Policy:
    return parse_policy(text, "policy.yaml")


def first_response_minutes(**created: Any) -> float | None:
    sla = Ticket(T0, priority="P1", **created).sla(policy(), T0 + timedelta(minutes=1))
    target = sla.metrics["first_response"].target
    return None if target is None else target.total_seconds() / 60


@pytest.mark.parametrize(
    ("created", "minutes"),
    [
        ({"group": "Billing", "tags": ["vip"]}, 10),
        ({"group": "BILLING", "tags": ["VIP"]}, 10),  # case ignored
        ({"group": "billing", "tags": ["gold_customer"]}, 10),  # `-` and `_` alike
        ({"group": "Billing", "tags": ["vip", "outage"]}, 10),  # the first match wins
        ({"group": "Technical", "tags": ["vip", "outage"]}, 20),  # all of the tags
        ({"group": "Technical", "tags": ["vip"]}, 120),  # not all of them
        ({"group": "Billing"}, 30),
        ({"group": "Billing", "tags": ["other"]}, 30),
        ({"channel": "email", "ticket_type": "Incident"}, 40),
        ({"channel": "email", "ticket_type": "question"}, 120),  # every condition must hold
        ({"ticket_type": "incident"}, 120),  # a channel nobody sent matches no channel
        ({"customer": "acme", "source": "zendesk"}, 50),
        ({"customer": "acme", "source": "api"}, 120),
        ({"customer": "ACME", "source": "zendesk"}, 120),  # customers and sources exactly
        ({"plan": "gold"}, 60),  # none of the tags: a ticket without tags has none
        ({"plan": "gold", "tags": ["Vip"]}, 120),
        ({"plan": "gold", "tags": ["other"]}, 60),
        ({}, 120),
    ],
)
def test_the_first_target_whose_conditions_the_ticket_meets_is_its_target(
    created: dict[str, Any], minutes: float
) -> None:
    """Targets are tried in file order; each condition named must hold, tags by any, all or
    none of a list; names compared as people type them, customers and sources exactly."""
    assert first_response_minutes(**created) == minutes


def test_a_ticket_no_target_takes_has_no_deadline() -> None:
    """Without a target for every ticket at the end, a ticket none takes is not measured."""
    text = DESK.split("  - name: fallback")[0]
    sla = Ticket(T0, priority="P1").sla(policy(text), T0 + timedelta(minutes=1))
    assert sla.metrics["first_response"].state.value == "not_applicable"


def test_plans_and_priorities_narrow_a_target_with_conditions_as_before() -> None:
    """`plans` and `priorities` still choose; `when` narrows further."""
    text = HEAD + (
        "targets:\n"
        "  - {when: {groups: [Billing]}, plans: [gold], priority: P1, first_response: 10m}\n"
        "  - {priorities: [P1, P2], first_response: 2h}\n"
    )
    now = T0 + timedelta(minutes=1)
    gold = Ticket(T0, priority="P1", plan="gold", group="Billing").sla(policy(text), now)
    standard = Ticket(T0, priority="P1", group="Billing").sla(policy(text), now)
    p2 = Ticket(T0, priority="P2", plan="gold", group="Billing").sla(policy(text), now)
    targets = [s.metrics["first_response"].target for s in (gold, standard, p2)]
    assert targets == [timedelta(minutes=10), timedelta(hours=2), timedelta(hours=2)]


# -- policy check -------------------------------------------------------------------------


def refusal(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    return str(caught.value).splitlines()


def test_a_target_after_one_without_conditions_for_the_same_tickets_is_refused() -> None:
    """The target without `when` takes every ticket of its plans and priorities: a target with
    conditions after it would never be chosen, and `policy check` says where to move it."""
    text = HEAD + (
        "targets:\n"
        "  - {priorities: [P1, P2], first_response: 2h}\n"
        "  - {when: {groups: [Billing]}, priority: P1, first_response: 10m}\n"
    )
    lines = refusal(text)
    assert lines == [
        "policy.yaml:8: targets[1]: plan standard and priority P1 already have a target "
        "(targets[0]) that takes every ticket: this one is never chosen for them (a target "
        "with `when` goes before the one without)",
        "policy.yaml:8: targets[1]: plan gold and priority P1 already have a target "
        "(targets[0]) that takes every ticket: this one is never chosen for them (a target "
        "with `when` goes before the one without)",
    ]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("{groups: [Billing]}", "{groups: [Billing]}"),
        ("{groups: [Billing, Sales]}", "{groups: [billing], tags: {any: [vip]}}"),
        ("{tags: {any: [vip, gold]}}", "{tags: {any: [vip]}, channels: [email]}"),
        ("{tags: {any: [vip]}}", "{tags: {all: [vip, outage]}}"),
        ("{tags: {none: [spam]}}", "{tags: {none: [spam, test]}}"),
        ("{tags: {all: [vip]}}", "{tags: {all: [vip, outage]}}"),
    ],
)
def test_a_target_whose_tickets_an_earlier_one_always_takes_is_refused(
    earlier: str, later: str
) -> None:
    """An earlier target whose conditions every ticket of the later one meets hides it."""
    text = HEAD + (
        "targets:\n"
        f"  - {{when: {earlier}, plans: [standard], priority: P1, first_response: 10m}}\n"
        f"  - {{when: {later}, plans: [standard], priority: P1, first_response: 20m}}\n"
    )
    assert refusal(text) == [
        "policy.yaml:8: targets[1]: plan standard and priority P1: targets[0] comes first and "
        "its `when` takes every ticket this one's would: this one is never chosen for them"
    ]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("{groups: [Billing], tags: {any: [vip]}}", "{groups: [Billing]}"),
        ("{groups: [Billing]}", "{groups: [Billing, Sales]}"),
        ("{tags: {any: [vip]}}", "{tags: {any: [vip, gold]}}"),
        ("{tags: {none: [spam, test]}}", "{tags: {none: [spam]}}"),
        ("{channels: [email]}", "{ticket_types: [incident]}"),
    ],
)
def test_a_narrower_target_first_leaves_the_broader_one_its_other_tickets(
    earlier: str, later: str
) -> None:
    """Specific targets first, broader ones after: each is chosen for some tickets."""
    text = HEAD + (
        "targets:\n"
        f"  - {{when: {earlier}, plans: [standard], priority: P1, first_response: 10m}}\n"
        f"  - {{when: {later}, plans: [standard], priority: P1, first_response: 20m}}\n"
        "  - {priorities: [P1, P2], first_response: 2h}\n"
    )
    assert len(policy(text).targets) == 3


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("{}", "targets[0].when: `when` needs a condition"),
        ("{groups: []}", "targets[0].when.groups: List should have at least 1 item"),
        ("{tags: {}}", "targets[0].when.tags: name tags under `any`, `all` or `none`"),
        (
            "{tags: {all: [vip], none: [VIP]}}",
            "targets[0].when.tags: no ticket both has and lacks vip",
        ),
        (
            "{tags: {any: [vip], none: [vip]}}",
            "targets[0].when.tags: every tag of `any` is under `none`",
        ),
        ("{group: [Billing]}", "targets[0].when.group: Extra inputs are not permitted"),
    ],
)
def test_conditions_that_match_no_ticket_or_every_ticket_are_refused(
    when: str, problem: str
) -> None:
    """An empty `when`, an empty list, or tags a ticket can never have are mistakes."""
    text = HEAD + f"targets:\n  - {{when: {when}, priority: P1, first_response: 10m}}\n"
    assert any(problem in line for line in refusal(text)), refusal(text)


def test_two_targets_may_not_share_a_name() -> None:
    """A target's name is what the timeline shows: it names one target."""
    text = HEAD + (
        "targets:\n"
        "  - {name: fast, priority: P1, first_response: 10m}\n"
        "  - {name: fast, priority: P2, first_response: 20m}\n"
    )
    assert refusal(text) == [
        "policy.yaml:8: targets[1].name: another target is already named 'fast'"
    ]
