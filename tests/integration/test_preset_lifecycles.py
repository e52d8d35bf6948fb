"""Each seed preset's ticket through its whole life, on a fake clock, as the people paged see it.

One story per preset in deploy/policies/, its notification section as shipped: a realistic
ticket is created, warned, breached, escalated (where the seed escalates), a page is
acknowledged and the ticket resolved; `Desk` drives the real apply → timer index → beat
dispatcher → fire → Apprise → sink path with ``now`` injected, on SQLite and PostgreSQL and real
Redis. Every message the sinks receive is in the story's table, once, on the channel its route
names, and nothing arrives after the acknowledgement stops a page or the resolution ends it.

The instants in the tables are computed by hand from the seed tables
(../shared/seeds/README.md) and each preset's header; the comment above each table shows how.
Every preset is in Spanish (``language: es``), so every message is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.config import settings
from tests.integration.lifecycle_desk import (
    ACK_SECRET,
    API_TOKEN,
    PUBLIC_URL,
    Desk,
    Sinks,
    Ticket,
    assert_messages,
    table,
)
from tests.support import PRESETS
from worker.runtime import runtime

OpenDesk = Callable[[str, Ticket, str], Desk]


@pytest.fixture
def open_desk(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OpenDesk]:
    """A desk running one preset as shipped, with the ticket link of its portal added (a
    deployment's own URL, like the channels' URLs), every channel going to a sink."""
    opened: list[Sinks] = []

    def open_(preset: str, ticket: Ticket, zone: str) -> Desk:
        template = ticket.link.replace(ticket.ticket_id, "{ticket_id}")
        text = (PRESETS / f"{preset}.yaml").read_text()
        (policy_dir / f"{preset}.yaml").write_text(
            f'{text}\nticket_links: {{{ticket.source}: "{template}"}}\n'
        )
        monkeypatch.setenv("ESCALERA_DEFAULT_POLICY", preset)
        monkeypatch.setenv("ESCALERA_API_TOKENS", f'["{API_TOKEN}"]')
        monkeypatch.setenv("ESCALERA_ACK_SECRET", ACK_SECRET)
        monkeypatch.setenv("ESCALERA_PUBLIC_URL", PUBLIC_URL)
        settings.cache_clear()
        runtime.cache_clear()
        sinks = Sinks(list(runtime().policies.named(preset).policy.channels))
        opened.append(sinks)
        return Desk(sinks, zone, ticket)

    yield open_
    for sinks in opened:
        sinks.close()


def assert_quiet_after(desk: Desk, at: str) -> None:
    """Resolved: nothing is armed any more, and a month later nothing more has arrived."""
    before = list(desk.received)
    desk.run_until(desk.local(at) + timedelta(days=30))
    assert desk.received == before
    assert desk.armed() == (0, 0)


# -- seed 000: Serviceaide ------------------------------------------------------------------
# P1 (Crítica): first response in 1 hour worked 24x7, reported by phone: the p1-phone route
# pages the p1_phone bridge for P1 warnings and breaches (every 15 minutes, 3 more times, until
# acknowledged); the breach also goes to the desk's mailbox. The seed has no escalation tiers,
# no update and no resolution clock: warnings, breach and the page are all there is to see.
# Created Monday 2026-03-02 10:00 PST (America/Los_Angeles, the 24x5 calendar's zone).
#   75 % of 1 h = 45 min -> 10:45;  90 % = 54 min -> 10:54;  breach 11:00.
#   Pages repeat 15 min after each was sent: 10:45 -> 11:00, 10:54 -> 11:09, 11:00 -> 11:15.
# The on-call acknowledges the breach page at 11:04 with the link in it: no 11:15 repeat. The
# reply at 11:10 meets the first response: the warning pages stop too (no 11:15 or 11:24).
SERVICEAIDE = table("""
at               | checkpoint                | route     | channel       | # | headline                                      | deadline
2026-03-02 10:45 | first_response:warning:75 | p1-phone  | p1_phone      | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (quedan 15m)
2026-03-02 10:54 | first_response:warning:90 | p1-phone  | p1_phone      | 0 | 90% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (quedan 6m)
2026-03-02 11:00 | first_response:breach     | p1-phone  | p1_phone      | 0 | primera respuesta incumplida                  | 2026-03-02 11:00 PST (vencido hace 0m)
2026-03-02 11:00 | first_response:breach     | breaches  | support_email | 0 | primera respuesta incumplida                  | 2026-03-02 11:00 PST (vencido hace 0m)
2026-03-02 11:00 | first_response:warning:75 | p1-phone  | p1_phone      | 1 | 75% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (vencido hace 0m)
2026-03-02 11:09 | first_response:warning:90 | p1-phone  | p1_phone      | 1 | 90% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (vencido hace 9m)
""")


def test_serviceaide_p1_is_paged_by_phone_until_acknowledged_and_answered(
    open_desk: OpenDesk,
) -> None:
    ticket = Ticket(
        "zendesk",
        "4101",
        "standard",
        "Clínica San Rafael",
        "P1",
        "https://serviceaide.zendesk.com/agent/tickets/4101",
    )
    desk = open_desk("serviceaide", ticket, "America/Los_Angeles")
    desk.event("2026-03-02 10:00", "created", priority="Crítica", customer=ticket.customer)
    desk.run_until(desk.local("2026-03-02 11:04"))
    page = desk.message("first_response:breach", "p1-phone", "p1_phone")
    desk.acknowledge_by_link("2026-03-02 11:04", page)
    desk.event("2026-03-02 11:10", "agent_replied")
    desk.event("2026-03-02 12:30", "resolved")
    assert_quiet_after(desk, "2026-03-02 12:30")
    assert_messages(desk, SERVICEAIDE)
