"""Who answered decides first response: a requester's own comment never stops the clock.

Portals do not always say who wrote a comment. Jira Cloud's ``comment_created`` carries a
reduced issue without ``fields.reporter``, and on an internal service desk the requester is an
Atlassian-account user like the agents, so an adapter may call every comment an agent's; the
ticket's requester, named on an earlier event, still tells them apart. The policy is the
CONTRACTS.md example: P1 first response in 1 h, Europe/Madrid office hours.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.clock import State
from shared.policy import Policy
from shared.policy_file import load_policy
from tests.support import ROOT, Ticket

MADRID = ZoneInfo("Europe/Madrid")
MON = datetime(2026, 3, 2, 9, 0, tzinfo=MADRID)
LATER = datetime(2026, 3, 2, 9, 30, tzinfo=MADRID)
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=MADRID)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "tests" / "fixtures" / "contract-example.yaml")


def first_response(ticket: Ticket, policy: Policy) -> State:
    return ticket.sla(policy, NOON).metrics["first_response"].state


def test_a_comment_by_the_requester_is_not_a_response(policy: Policy) -> None:
    ticket = Ticket(MON, priority="P1", requester_id="acct-ana").reply(LATER, author="acct-ana")
    assert first_response(ticket, policy) is State.BREACHED


def test_an_agents_comment_is_a_response(policy: Policy) -> None:
    ticket = Ticket(MON, priority="P1", requester_id="acct-ana").reply(LATER, author="acct-luis")
    assert first_response(ticket, policy) is State.MET


def test_the_requester_named_on_a_later_event_still_counts(policy: Policy) -> None:
    """The created event did not name the requester; a status change later did."""
    ticket = (
        Ticket(MON, priority="P1")
        .reply(LATER, author="acct-ana")
        .add("status_changed", NOON, status="open", requester_id="acct-ana")
    )
    assert first_response(ticket, policy) is State.BREACHED


@pytest.mark.parametrize("role", ["requester", "customer", "system"])
def test_a_reply_the_portal_says_is_not_an_agents_never_counts(policy: Policy, role: str) -> None:
    ticket = Ticket(MON, priority="P1").reply(LATER, author="someone", author_role=role)
    assert first_response(ticket, policy) is State.BREACHED


def test_a_created_event_without_priority_takes_the_policys_default(policy: Policy) -> None:
    """Zendesk e-mail tickets arrive with ``priority: null``; the policy's default_priority
    (or its matrix) gives them one, instead of the event being refused."""
    default = policy.model_copy(update={"default_priority": "P2"})
    sla = Ticket(MON).sla(default, NOON)
    assert sla.priority == "P2"


def test_a_context_only_change_moves_no_clock(policy: Policy) -> None:
    """A new subject or tags (an ``updated`` event) is stored and shown, never a state change."""
    plain = Ticket(MON, priority="P1").sla(policy, NOON)
    updated = Ticket(MON, priority="P1").add("updated", LATER, subject="Down again", tags=["vip"])
    assert updated.sla(policy, NOON).metrics == plain.metrics
