"""Allowance arithmetic (seed 004): which year a ticket counts in, grace, levels, contacts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.errors import PolicyError
from shared.policy import Allowance, CustomerSpec
from shared.policy_file import parse_policy
from tests.support import PRESETS
from worker.report.allowances import (
    ContactEvent,
    CreatedTicket,
    allowance_year,
    in_grace,
    reached,
    unauthorized,
    usage,
)

CUSTOMERS = """
customers:
  acme: {plan: standard, go_live: 2026-01-05, contacts: [ana@acme.es]}
  leap: {plan: company, contract_start: 2024-02-29}
  open: {plan: enterprise}
"""


def athento(extra: str = CUSTOMERS) -> object:
    return parse_policy((PRESETS / "athento.yaml").read_text() + extra, "athento.yaml")


@pytest.mark.parametrize(
    ("counted", "allowance", "levels"),
    [
        (39, 50, ()),
        (40, 50, (80,)),
        (49, 50, (80,)),
        (50, 50, (80, 100)),
        (99, 125, ()),
        (100, 125, (80,)),
    ],
)
def test_levels_are_reached_exactly_without_rounding(
    counted: int, allowance: int, levels: tuple[int, ...]
) -> None:
    assert reached(counted, allowance, (80, 100)) == levels


def test_the_allowance_year_runs_from_the_contract_anniversary() -> None:
    leap = CustomerSpec(contract_start=date(2024, 2, 29))
    assert allowance_year(leap, date(2026, 2, 27)) == (date(2025, 2, 28), date(2026, 2, 28))
    assert allowance_year(leap, date(2026, 2, 28)) == (date(2026, 2, 28), date(2027, 2, 28))
    assert allowance_year(None, date(2026, 7, 1)) == (date(2026, 1, 1), date(2027, 1, 1))


def test_grace_is_the_two_months_from_go_live_on_the_calendar() -> None:
    spec = CustomerSpec(go_live=date(2026, 12, 31))
    assert in_grace(spec, Allowance(), date(2026, 12, 31))
    assert in_grace(spec, Allowance(), date(2027, 2, 27))  # Feb 28 is two months after Dec 31
    assert not in_grace(spec, Allowance(), date(2027, 2, 28))
    assert not in_grace(spec, Allowance(), date(2026, 12, 30))
    assert not in_grace(spec, Allowance(grace_months=0), date(2026, 12, 31))


def test_usage_counts_on_the_customers_local_date_and_skips_plans_without_allowance() -> None:
    policy = athento()
    # 23:30 UTC on December 31 is already January 1 in Madrid
    tickets = [
        CreatedTicket("z", "1", "acme", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
        CreatedTicket("z", "2", "acme", datetime(2026, 2, 1, 10, tzinfo=UTC)),  # grace
        CreatedTicket("z", "3", "open", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        CreatedTicket("z", "4", "nobody", datetime(2026, 3, 1, 10, tzinfo=UTC)),  # default plan
    ]
    rows = {u.customer: u for u in usage(policy, tickets)}  # type: ignore[arg-type]
    assert (rows["acme"].year_start, rows["acme"].counted, rows["acme"].excluded) == (
        date(2026, 1, 1),
        1,
        1,
    )
    assert (rows["open"].allowance, rows["nobody"].plan, rows["nobody"].allowance) == (
        200,
        "standard",
        50,
    )


def test_only_listed_customers_flag_requesters_ignoring_case() -> None:
    policy = athento()

    def reported(customer: str, requester: str) -> ContactEvent:
        return ContactEvent(
            "z", "1", requester, "created", datetime(2026, 3, 1, tzinfo=UTC), customer, requester
        )

    events = [
        reported("acme", "ANA@acme.es"),
        reported("acme", "eve@x.es"),
        reported("open", "eve@x.es"),
    ]
    assert [e.requester for e in unauthorized(policy, events)] == ["eve@x.es"]  # type: ignore[arg-type]


def test_bad_allowance_fields_name_file_line_and_field() -> None:
    with pytest.raises(PolicyError) as bad_date:
        athento("customers:\n  acme: {plan: standard, go_live: 2026-02-30}\n")
    assert "customers.acme.go_live" in str(bad_date.value) and "athento.yaml:" in str(
        bad_date.value
    )
    text = (
        (PRESETS / "athento.yaml")
        .read_text()
        .replace(
            "allowance: {tickets_per_year: 50, authorized_contacts: 4}",
            "allowance: {tickets_per_year: 50, authorized_contacts: 4, warn_at: [80, 80]}",
        )
    )
    with pytest.raises(
        PolicyError, match=r"plans\.standard\.allowance\.warn_at: each warning percentage once"
    ):
        parse_policy(text, "athento.yaml")
