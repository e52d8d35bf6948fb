"""When a page stops repeating on its own: what it pages about is over."""

from __future__ import annotations

from typing import Any

import pytest

from worker.notify.paging import page_stands


def sla(tier: int = 1, **completed: str | None) -> dict[str, Any]:
    """A ticket's last evaluation, with the completion instant of each named metric."""
    return {"tier": tier, "metrics": {name: {"completed_at": at} for name, at in completed.items()}}


@pytest.mark.parametrize(
    ("key", "status", "evaluation", "latest_update", "stands"),
    [
        # a first-response page repeats until the reply, whatever the page was about
        ("first_response:warning:75", "open", sla(first_response=None), None, True),
        ("first_response:breach", "open", sla(first_response="10:00"), None, False),
        # an update page is about its own cycle: a later reply began cycle 3, cycle 2 is met
        ("update#2:breach", "open", sla(update=None), 2, True),
        ("update#2:breach", "open", sla(update=None), 3, False),
        ("update#2:reminder:1", "open", sla(update="11:00"), 2, False),
        # resolution: until resolved or closed
        ("resolution:warning:90", "pending", sla(resolution=None), None, True),
        ("resolution:breach", "solved", sla(resolution="12:00"), None, False),
        ("resolution:breach", "closed", sla(resolution=None), None, False),
    ],
)
def test_a_clocks_page_stands_until_the_clock_is_met_or_the_ticket_resolved(
    key: str,
    status: str,
    evaluation: dict[str, Any],
    latest_update: int | None,
    stands: bool,
) -> None:
    assert (
        page_stands(
            key.split(":")[1], key, None, status=status, sla=evaluation, latest_update=latest_update
        )
        is stands
    )


def test_an_escalation_page_stands_until_that_tier_holds_the_ticket() -> None:
    """Escalated to tier 3: tier 2 taking the ticket is not enough; tier 3 taking it is."""
    page = ("escalation", "escalation:tier3", 3)
    assert page_stands(*page, status="open", sla=sla(tier=2), latest_update=None)
    assert not page_stands(*page, status="open", sla=sla(tier=3), latest_update=None)
    assert not page_stands(*page, status="solved", sla=sla(tier=1), latest_update=None)
