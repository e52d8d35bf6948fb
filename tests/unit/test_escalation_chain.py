"""Escalation chains, the pure parts: which channels each message of a page tells, when the next
one is due, where a chain ends, and every policy-check refusal with its file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import PolicyError
from shared.policy_file import parse_policy
from shared.policy_routes import RouteSpec
from tests.support import ROOT, preset_text_without_notifications
from worker.notify.paging import next_repeat

SENT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CHAIN = RouteSpec.model_validate(
    {
        "name": "p1-chain",
        "steps": [
            {"channels": ["team_chat"], "ack_within": "10m"},
            {"channels": ["lead_email", "lead_sms"], "ack_within": "15m"},
            {"channels": ["oncall_phone"], "ack_within": "5m"},
        ],
        "repeat_last": 2,
    }
)


@pytest.mark.parametrize(
    ("repeat", "channels", "wait"),
    [
        (0, ["team_chat"], timedelta(minutes=10)),  # the assignee's team
        (1, ["lead_email", "lead_sms"], timedelta(minutes=15)),  # the team lead
        (2, ["oncall_phone"], timedelta(minutes=5)),  # on call
        (3, ["oncall_phone"], timedelta(minutes=5)),  # on call again (repeat_last 1 of 2)
        (4, ["oncall_phone"], None),  # on call the last time: nothing follows
    ],
)
def test_each_message_of_a_chain_tells_its_steps_channels_and_waits_its_ack_within(
    repeat: int, channels: list[str], wait: timedelta | None
) -> None:
    assert CHAIN.channels_at(repeat, channel="team_chat") == channels
    assert CHAIN.wait_after(repeat) == wait
    assert CHAIN.last_repeat == 4


@dataclass
class Sent:
    repeat: int
    acknowledged_at: datetime | None = None


def test_the_next_step_is_due_its_ack_within_after_the_step_was_sent() -> None:
    """Measured from when the step went out (a late or retried one moves its successor), never
    after the last message, never once acknowledged."""
    assert next_repeat(CHAIN, Sent(0), SENT) == SENT + timedelta(minutes=10)
    assert next_repeat(CHAIN, Sent(1), SENT) == SENT + timedelta(minutes=15)
    assert next_repeat(CHAIN, Sent(4), SENT) is None
    assert next_repeat(CHAIN, Sent(1, acknowledged_at=SENT), SENT) is None
    assert next_repeat(None, Sent(0), SENT) is None  # its route is gone from the policy


def test_a_route_with_channels_repeats_as_it_always_did() -> None:
    """``repeat: {every: 15m, limit: 2}``: the page's own channel again (a page that went to
    the fallback repeats there), every 15 minutes, twice."""
    route = RouteSpec.model_validate(
        {"name": "page", "channels": ["oncall", "desk"], "repeat": {"every": "15m", "limit": 2}}
    )
    assert route.first_channels() == ["oncall", "desk"]
    assert route.channels_at(1, channel="backup") == ["backup"]
    assert [route.wait_after(n) for n in range(3)] == [timedelta(minutes=15)] * 2 + [None]
    once = RouteSpec.model_validate({"name": "note", "channels": ["portal"]})
    assert (once.last_repeat, once.wait_after(0), once.step_of(3)) == (0, None, 0)


def test_a_chain_without_repeat_last_ends_with_its_last_step() -> None:
    route = RouteSpec.model_validate(
        {"name": "two", "steps": [{"channels": ["a"], "ack_within": "1h"}, {"channels": ["b"]}]}
    )
    assert [route.wait_after(n) for n in range(2)] == [timedelta(hours=1), None]
    assert route.first_channels() == ["a"] and route.step_of(7) == 1


# -- the policy check ---------------------------------------------------------------------------

CHANNELS = """
channels: {team_chat: {}, lead_email: {}, oncall_phone: {}}
routes:
"""


def refusal(routes: str) -> list[str]:
    """The problems of a policy whose routes are ``routes``, each line counted from the first
    route's (``+0``)."""
    text = preset_text_without_notifications("soporte-completo") + CHANNELS + routes
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    first = text.splitlines().index("routes:") + 2
    problems = []
    for problem in str(caught.value).splitlines():
        _file, line, rest = problem.split(":", 2)
        problems.append(f"policy.yaml:+{int(line) - first}:{rest}")
    return problems


def test_the_chain_of_the_docs_loads_and_tells_whom_it_says_when_it_says() -> None:
    """docs/policy-format.md's example: breached at 10:00, the team at 10:00, the lead at 10:10,
    the phone at 10:25, 10:35, 10:45 and 10:55."""
    docs = (ROOT / "docs" / "policy-format.md").read_text()
    section = docs.split("## Escalation chains", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(preset_text_without_notifications("soporte-completo") + example)
    (route,) = policy.routes
    at, told = datetime(2026, 3, 2, 10, 0, tzinfo=UTC), []
    for n in range(route.last_repeat + 1):
        told.append((at.strftime("%H:%M"), route.channels_at(n)))
        at += route.wait_after(n) or timedelta(0)
    assert told == [
        ("10:00", ["team_chat"]),
        ("10:10", ["lead_email"]),
        ("10:25", ["oncall_phone"]),
        ("10:35", ["oncall_phone"]),
        ("10:45", ["oncall_phone"]),
        ("10:55", ["oncall_phone"]),
    ]


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            "  - {name: r, channels: [team_chat], steps: [{channels: [lead_email]}]}\n",
            ["policy.yaml:+0: routes[0].steps: a route has either `channels` or `steps`, not both"],
        ),
        (
            "  - {name: r}\n",
            [
                "policy.yaml:+0: routes[0].channels: a route needs `channels` or `steps` "
                "(an escalation chain)"
            ],
        ),
        (
            "  - name: r\n    steps:\n      - {channels: [team_chat]}\n"
            "      - {channels: [lead_email]}\n",
            [
                "policy.yaml:+2: routes[0].steps[0].ack_within: how long before steps[1] is told:"
                " write e.g. ack_within: 10m"
            ],
        ),
        (
            "  - name: r\n    steps:\n      - {channels: [team_chat]}\n    repeat_last: 2\n",
            [
                "policy.yaml:+2: routes[0].steps[0].ack_within: the last step repeats "
                "(repeat_last: 2): how long between its repeats? write e.g. ack_within: 10m"
            ],
        ),
        (
            "  - name: r\n    steps: [{channels: [team_chat]}]\n    repeat: {every: 5m}\n",
            [
                "policy.yaml:+2: routes[0].repeat: a chain repeats its last step with "
                "`repeat_last`, not `repeat`"
            ],
        ),
        (
            "  - {name: r, channels: [team_chat], repeat_last: 2}\n",
            [
                "policy.yaml:+0: routes[0].repeat_last: `repeat_last` repeats the last of "
                "`steps`: use `repeat`"
            ],
        ),
        (
            "  - name: r\n    steps: [{channels: [team_chat], ack_within: 5m}, {channels: [boss]}]\n",
            [
                "policy.yaml:+1: routes[0].steps[1].channels[0]: unknown channel 'boss' "
                "(known: team_chat, lead_email, oncall_phone)"
            ],
        ),
        (
            "  - name: r\n    steps: [{channels: [team_chat], ack_within: 1bd}, {channels: [lead_email]}]\n",
            [
                "policy.yaml:+1: routes[0].steps[0].ack_within: ack_within is wall-clock time: write e.g. 10m or 1h"
            ],
        ),
        (
            "  - name: r\n    steps: [{channels: [team_chat], ack_within: 5m}]\n    repeat_last: 21\n",
            ["policy.yaml:+2: routes[0].repeat_last: Input should be less than or equal to 20"],
        ),
        (
            "  - name: r\n    steps: []\n",
            [
                "policy.yaml:+1: routes[0].steps: List should have at least 1 item after validation, not 0"
            ],
        ),
    ],
)
def test_a_chain_that_cannot_mean_anything_is_refused_naming_line_and_field(
    routes: str, expected: list[str]
) -> None:
    assert refusal(routes) == expected


def test_a_chain_longer_than_ten_steps_is_refused() -> None:
    steps = "".join("      - {channels: [team_chat], ack_within: 5m}\n" for _ in range(11))
    (problem,) = refusal(f"  - name: r\n    steps:\n{steps}")
    assert problem.startswith("policy.yaml:+1: routes[0].steps: List should have at most 10 items")
