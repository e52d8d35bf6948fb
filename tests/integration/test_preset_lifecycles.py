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
# The on-call acknowledges the breach page at 11:04 with the link in it: no 11:15 repeat of
# it; the 75 % page, not acknowledged, repeats at 11:15. The reply at 11:20 meets the first
# response: what is left of the warning pages stops (no 11:24, 11:30 or 11:39).
SERVICEAIDE = table("""
at               | checkpoint                | route     | channel       | # | headline                                      | deadline
2026-03-02 10:45 | first_response:warning:75 | p1-phone  | p1_phone      | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (quedan 15m)
2026-03-02 10:54 | first_response:warning:90 | p1-phone  | p1_phone      | 0 | 90% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (quedan 6m)
2026-03-02 11:00 | first_response:breach     | p1-phone  | p1_phone      | 0 | primera respuesta incumplida                  | 2026-03-02 11:00 PST (vencido hace 0m)
2026-03-02 11:00 | first_response:breach     | breaches  | support_email | 0 | primera respuesta incumplida                  | 2026-03-02 11:00 PST (vencido hace 0m)
2026-03-02 11:00 | first_response:warning:75 | p1-phone  | p1_phone      | 1 | 75% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (vencido hace 0m)
2026-03-02 11:09 | first_response:warning:90 | p1-phone  | p1_phone      | 1 | 90% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (vencido hace 9m)
2026-03-02 11:15 | first_response:warning:75 | p1-phone  | p1_phone      | 2 | 75% del tiempo de primera respuesta consumido | 2026-03-02 11:00 PST (vencido hace 15m)
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
    desk.event("2026-03-02 11:20", "agent_replied")
    desk.event("2026-03-02 12:30", "resolved")
    assert_quiet_after(desk, "2026-03-02 12:30")
    assert_messages(desk, SERVICEAIDE)


# -- seed 001: Soporte Completo -------------------------------------------------------------
# Crítico (P1), 24x7, shown in America/Mexico_City (CST): first response 30 min, a customer
# update every 2 h, tier 2 at 4 h and tier 3 at 8 h after the first response. Routes: the
# desk mailbox hears warnings, breaches and reminders; Crítico breaches and escalations page
# oncall_phone (every 15 min, 3 more times); each tier's team hears its escalation.
# Created Monday 2026-03-02 09:00 CST.
#   first response: 75 % = 22.5 min -> 09:22:30; 90 % = 27 min -> 09:27; breach 09:30.
#   The on-call acknowledges the breach page at 09:33: no 09:45 repeat. First reply 09:50.
#   update #1 from 09:50: 75 % of 2 h -> 11:20; 90 % -> 11:38; breach 11:50, paged again at
#   12:05, 12:20, 12:35 (nobody acknowledges: the limit of 3 ends it); first reminder at 200 %
#   -> 13:50. Escalations from the reply: tier 2 at 09:50 + 4 h = 13:50, tier 3 at + 8 h = 17:50.
#   Tier 2 takes the ticket at 13:55: its escalation page stops (no 14:05 repeat). Updates at
#   14:10, 15:35 and 17:00, each within 90 min (75 % of 2 h): no more update messages, and the
#   reminders of 15:50 and 17:50 are cancelled by the 14:10 reply.
#   Tier 3 is paged at 17:50 and again at 18:05; resolved at 18:10: no 18:20 repeat.
SOPORTE_COMPLETO = table("""
at                  | checkpoint                | route          | channel       | # | headline                                             | deadline
2026-03-02 09:22:30 | first_response:warning:75 | desk           | support_email | 0 | 75% del tiempo de primera respuesta consumido        | 2026-03-02 09:30 CST (quedan 7m)
2026-03-02 09:27    | first_response:warning:90 | desk           | support_email | 0 | 90% del tiempo de primera respuesta consumido        | 2026-03-02 09:30 CST (quedan 3m)
2026-03-02 09:30    | first_response:breach     | critico-phone  | oncall_phone  | 0 | primera respuesta incumplida                         | 2026-03-02 09:30 CST (vencido hace 0m)
2026-03-02 09:30    | first_response:breach     | desk           | support_email | 0 | primera respuesta incumplida                         | 2026-03-02 09:30 CST (vencido hace 0m)
2026-03-02 11:20    | update#1:warning:75       | desk           | support_email | 0 | 75% del tiempo de actualización al cliente consumido | 2026-03-02 11:50 CST (quedan 30m)
2026-03-02 11:38    | update#1:warning:90       | desk           | support_email | 0 | 90% del tiempo de actualización al cliente consumido | 2026-03-02 11:50 CST (quedan 12m)
2026-03-02 11:50    | update#1:breach           | critico-phone  | oncall_phone  | 0 | actualización al cliente incumplida                  | 2026-03-02 11:50 CST (vencido hace 0m)
2026-03-02 11:50    | update#1:breach           | desk           | support_email | 0 | actualización al cliente incumplida                  | 2026-03-02 11:50 CST (vencido hace 0m)
2026-03-02 12:05    | update#1:breach           | critico-phone  | oncall_phone  | 1 | actualización al cliente incumplida                  | 2026-03-02 11:50 CST (vencido hace 15m)
2026-03-02 12:20    | update#1:breach           | critico-phone  | oncall_phone  | 2 | actualización al cliente incumplida                  | 2026-03-02 11:50 CST (vencido hace 30m)
2026-03-02 12:35    | update#1:breach           | critico-phone  | oncall_phone  | 3 | actualización al cliente incumplida                  | 2026-03-02 11:50 CST (vencido hace 45m)
2026-03-02 13:50    | escalation:tier2          | critico-phone  | oncall_phone  | 0 | escalar a nivel 2                                    | 2026-03-02 13:50 CST (vencido hace 0m)
2026-03-02 13:50    | escalation:tier2          | escalate-tier2 | tier2_team    | 0 | escalar a nivel 2                                    | 2026-03-02 13:50 CST (vencido hace 0m)
2026-03-02 13:50    | update#1:reminder:1       | desk           | support_email | 0 | actualización al cliente sigue vencida               | 2026-03-02 11:50 CST (vencido hace 2h)
2026-03-02 17:50    | escalation:tier3          | critico-phone  | oncall_phone  | 0 | escalar a nivel 3                                    | 2026-03-02 17:50 CST (vencido hace 0m)
2026-03-02 17:50    | escalation:tier3          | escalate-tier3 | tier3_team    | 0 | escalar a nivel 3                                    | 2026-03-02 17:50 CST (vencido hace 0m)
2026-03-02 18:05    | escalation:tier3          | critico-phone  | oncall_phone  | 1 | escalar a nivel 3                                    | 2026-03-02 17:50 CST (vencido hace 15m)
""")


def test_soporte_completo_critico_escalates_to_tier_2_and_3_with_updates(
    open_desk: OpenDesk,
) -> None:
    ticket = Ticket(
        "freshdesk",
        "2201",
        "completo",
        "Farmacias del Norte",
        "P1",
        "https://farmaciasdelnorte.freshdesk.com/a/tickets/2201",
    )
    desk = open_desk("soporte-completo", ticket, "America/Mexico_City")
    desk.event("2026-03-02 09:00", "created", priority="Crítico", customer=ticket.customer)
    desk.run_until(desk.local("2026-03-02 09:33"))
    page = desk.message("first_response:breach", "critico-phone", "oncall_phone")
    desk.acknowledge_by_link("2026-03-02 09:33", page)
    desk.event("2026-03-02 09:50", "agent_replied")
    desk.event("2026-03-02 13:55", "assigned", tier=2)
    for update in ("14:10", "15:35", "17:00"):
        desk.event(f"2026-03-02 {update}", "agent_replied")
    desk.event("2026-03-02 18:10", "resolved")
    assert_quiet_after(desk, "2026-03-02 18:10")
    assert_messages(desk, SOPORTE_COMPLETO)


# -- seed 002: Wati Business+ ---------------------------------------------------------------
# Urgent (P1), 24/7, shown in the customer's zone (Asia/Kolkata, IST, UTC+05:30): first
# response 30 min, resolution 4 h. The seed escalates on its own when resolution is breached
# (the preset sends that to tier 2) and lets the customer request escalation (the next tier:
# tier 3 once tier 2 holds the ticket). It names no tiers and no escalation after a duration:
# these two are all the escalation it has. Escalations page the escalation managers (every
# 30 min, 2 more times); warnings and breaches go to the support team's channel.
# Created Monday 2026-03-02 10:00 IST.
#   first response: 75 % -> 10:22:30; 90 % -> 10:27; breach 10:30. Reply at 10:35.
#   resolution: 75 % of 4 h = 3 h -> 13:00; 90 % = 3 h 36 min -> 13:36; breach 14:00, and with
#   it the automatic escalation to tier 2 (keyed escalation:tier2:resolution).
#   A manager acknowledges that page by the API at 14:10: no 14:30 repeat. Tier 2 takes the
#   ticket at 14:40; at 15:00 the customer requests escalation: tier 3 is paged at once, and
#   again at 15:30 (nobody acknowledges). Resolved at 15:45: no 16:00 repeat.
WATI = table("""
at                  | checkpoint                         | route       | channel       | # | headline                                      | deadline
2026-03-02 10:22:30 | first_response:warning:75          | desk        | support_slack | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-02 10:30 IST (quedan 7m)
2026-03-02 10:27    | first_response:warning:90          | desk        | support_slack | 0 | 90% del tiempo de primera respuesta consumido | 2026-03-02 10:30 IST (quedan 3m)
2026-03-02 10:30    | first_response:breach              | desk        | support_slack | 0 | primera respuesta incumplida                  | 2026-03-02 10:30 IST (vencido hace 0m)
2026-03-02 13:00    | resolution:warning:75              | desk        | support_slack | 0 | 75% del tiempo de resolución consumido        | 2026-03-02 14:00 IST (quedan 1h)
2026-03-02 13:36    | resolution:warning:90              | desk        | support_slack | 0 | 90% del tiempo de resolución consumido        | 2026-03-02 14:00 IST (quedan 24m)
2026-03-02 14:00    | escalation:tier2:resolution        | escalations | escalations   | 0 | escalar a nivel 2                             | 2026-03-02 14:00 IST (vencido hace 0m)
2026-03-02 14:00    | resolution:breach                  | desk        | support_slack | 0 | resolución incumplida                         | 2026-03-02 14:00 IST (vencido hace 0m)
2026-03-02 15:00    | escalation:requested:88231-e4      | escalations | escalations   | 0 | escalar a nivel 3                             | 2026-03-02 15:00 IST (vencido hace 0m)
2026-03-02 15:30    | escalation:requested:88231-e4      | escalations | escalations   | 1 | escalar a nivel 3                             | 2026-03-02 15:00 IST (vencido hace 30m)
""")


def test_wati_urgent_escalates_on_breach_and_on_the_customers_request(
    open_desk: OpenDesk,
) -> None:
    ticket = Ticket(
        "zendesk",
        "88231",
        "business_plus",
        "Luz Textiles",
        "P1",
        "https://luztextiles.zendesk.com/agent/tickets/88231",
    )
    desk = open_desk("wati-business-plus", ticket, "Asia/Kolkata")
    desk.event(
        "2026-03-02 10:00",
        "created",
        priority="Urgente",
        customer=ticket.customer,
        customer_timezone="Asia/Kolkata",
    )
    desk.event("2026-03-02 10:35", "agent_replied")
    desk.run_until(desk.local("2026-03-02 14:10"))
    page = desk.message("escalation:tier2:resolution", "escalations", "escalations")
    desk.acknowledge_by_api("2026-03-02 14:10", page)
    desk.event("2026-03-02 14:40", "assigned", tier=2)
    desk.event("2026-03-02 15:00", "escalation_requested", requester="customer")  # event e4
    desk.event("2026-03-02 15:45", "resolved")
    assert_quiet_after(desk, "2026-03-02 15:45")
    assert_messages(desk, WATI)


# -- seed 003: Zmanda -----------------------------------------------------------------------
# Premium plan, urgency high x impact high = P1: first response in 15 min, 24x7, shown in the
# customer's zone (Europe/Berlin, CET). P1 on premium pages the account manager's pager
# (every 10 min, 3 more times); the desk mailbox hears every warning and breach. The seed has
# first-response targets only: no escalation tiers, no update or resolution clock.
# Created Monday 2026-03-02 16:50 CET.
#   75 % of 15 min = 11 min 15 s -> 17:01:15; 90 % = 13 min 30 s -> 17:03:30; breach 17:05.
#   The breach page is acknowledged by its link at 17:07: no 17:15 repeat of it. The warning
#   pages repeat 10 min after they were sent (17:11:15, 17:13:30) until the reply at 17:18
#   meets the first response (no 17:21:15 or 17:23:30).
ZMANDA = table("""
at                  | checkpoint                | route      | channel       | # | headline                                      | deadline
2026-03-02 17:01:15 | first_response:warning:75 | premium-p1 | premium_pager | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-02 17:05 CET (quedan 3m)
2026-03-02 17:01:15 | first_response:warning:75 | desk       | support_email | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-02 17:05 CET (quedan 3m)
2026-03-02 17:03:30 | first_response:warning:90 | premium-p1 | premium_pager | 0 | 90% del tiempo de primera respuesta consumido | 2026-03-02 17:05 CET (quedan 1m)
2026-03-02 17:03:30 | first_response:warning:90 | desk       | support_email | 0 | 90% del tiempo de primera respuesta consumido | 2026-03-02 17:05 CET (quedan 1m)
2026-03-02 17:05    | first_response:breach     | premium-p1 | premium_pager | 0 | primera respuesta incumplida                  | 2026-03-02 17:05 CET (vencido hace 0m)
2026-03-02 17:05    | first_response:breach     | desk       | support_email | 0 | primera respuesta incumplida                  | 2026-03-02 17:05 CET (vencido hace 0m)
2026-03-02 17:11:15 | first_response:warning:75 | premium-p1 | premium_pager | 1 | 75% del tiempo de primera respuesta consumido | 2026-03-02 17:05 CET (vencido hace 6m)
2026-03-02 17:13:30 | first_response:warning:90 | premium-p1 | premium_pager | 1 | 90% del tiempo de primera respuesta consumido | 2026-03-02 17:05 CET (vencido hace 8m)
""")


def test_zmanda_premium_p1_from_the_matrix_pages_the_account_manager(
    open_desk: OpenDesk,
) -> None:
    ticket = Ticket(
        "jira",
        "ZS-5120",
        "premium",
        "Brauerei Adler",
        "P1",
        "https://zmanda.atlassian.net/browse/ZS-5120",
    )
    desk = open_desk("zmanda", ticket, "Europe/Berlin")
    desk.event(
        "2026-03-02 16:50",
        "created",
        urgency="high",
        impact="high",
        plan="premium",
        customer=ticket.customer,
        customer_timezone="Europe/Berlin",
    )
    desk.run_until(desk.local("2026-03-02 17:07"))
    page = desk.message("first_response:breach", "premium-p1", "premium_pager")
    desk.acknowledge_by_link("2026-03-02 17:07", page)
    desk.event("2026-03-02 17:18", "agent_replied")
    desk.event("2026-03-02 18:30", "resolved")
    assert_quiet_after(desk, "2026-03-02 18:30")
    assert_messages(desk, ZMANDA)


# -- seed 004: Athento ----------------------------------------------------------------------
# Enterprise plan, Blocker (P1): first response 2 h, resolution 4 h, in working hours 08–20
# Monday to Friday, Europe/Madrid (CEST from 29 March), closed on Spain's national holidays.
# Company and Enterprise blockers page the phone line (every 30 min, 2 more times); the
# support mailbox hears every warning and breach. The seed has no escalation tiers.
# Created Thursday 2026-04-02 18:30 CEST, before Easter: Good Friday (3 April) is a national
# holiday, then the weekend; Monday 6 April is a working day. 1 h 30 min is left on Thursday.
#   An automatic "we got it" at 18:31 does not count as the response (seed 004).
#   first response: 75 % of 2 h = 1 h 30 min -> Thursday 20:00 (used up at closing: the closing
#   instant); 90 % = 1 h 48 min -> 18 min into Monday -> 08:18; breach 30 min in -> 08:30.
#   resolution: 75 % of 4 h = 3 h -> Monday 09:30; 90 % = 3 h 36 min -> 10:06; breach 10:30.
#   The on-call acknowledges Thursday's page by the API at 20:10: no 20:30 repeat. The reply at
#   08:40 meets the first response (no 08:48 or 09:00 repeats). The 09:30 page repeats at 10:00;
#   resolved at 10:20: no 10:30 or 10:36 repeats, and the 10:30 breach never comes.
ATHENTO = table("""
at                  | checkpoint                | route         | channel       | # | headline                                      | deadline
2026-04-02 20:00    | first_response:warning:75 | blocker-phone | phone_line    | 0 | 75% del tiempo de primera respuesta consumido | 2026-04-06 08:30 CEST (quedan 3d 12h 30m)
2026-04-02 20:00    | first_response:warning:75 | desk          | support_email | 0 | 75% del tiempo de primera respuesta consumido | 2026-04-06 08:30 CEST (quedan 3d 12h 30m)
2026-04-06 08:18    | first_response:warning:90 | blocker-phone | phone_line    | 0 | 90% del tiempo de primera respuesta consumido | 2026-04-06 08:30 CEST (quedan 12m)
2026-04-06 08:18    | first_response:warning:90 | desk          | support_email | 0 | 90% del tiempo de primera respuesta consumido | 2026-04-06 08:30 CEST (quedan 12m)
2026-04-06 08:30    | first_response:breach     | blocker-phone | phone_line    | 0 | primera respuesta incumplida                  | 2026-04-06 08:30 CEST (vencido hace 0m)
2026-04-06 08:30    | first_response:breach     | desk          | support_email | 0 | primera respuesta incumplida                  | 2026-04-06 08:30 CEST (vencido hace 0m)
2026-04-06 09:30    | resolution:warning:75     | blocker-phone | phone_line    | 0 | 75% del tiempo de resolución consumido        | 2026-04-06 10:30 CEST (quedan 1h)
2026-04-06 09:30    | resolution:warning:75     | desk          | support_email | 0 | 75% del tiempo de resolución consumido        | 2026-04-06 10:30 CEST (quedan 1h)
2026-04-06 10:00    | resolution:warning:75     | blocker-phone | phone_line    | 1 | 75% del tiempo de resolución consumido        | 2026-04-06 10:30 CEST (quedan 30m)
2026-04-06 10:06    | resolution:warning:90     | blocker-phone | phone_line    | 0 | 90% del tiempo de resolución consumido        | 2026-04-06 10:30 CEST (quedan 24m)
2026-04-06 10:06    | resolution:warning:90     | desk          | support_email | 0 | 90% del tiempo de resolución consumido        | 2026-04-06 10:30 CEST (quedan 24m)
""")


def test_athento_enterprise_blocker_waits_out_good_friday_and_the_weekend(
    open_desk: OpenDesk,
) -> None:
    ticket = Ticket(
        "api",
        "ATH-7731",
        "enterprise",
        "Seguros Meridiano",
        "P1",
        "https://soporte.athento.example/tickets/ATH-7731",
    )
    desk = open_desk("athento", ticket, "Europe/Madrid")
    desk.event(
        "2026-04-02 18:30",
        "created",
        priority="Bloqueante",
        plan="enterprise",
        customer=ticket.customer,
    )
    desk.event("2026-04-02 18:31", "agent_replied", automatic=True)
    desk.run_until(desk.local("2026-04-02 20:10"))
    page = desk.message("first_response:warning:75", "blocker-phone", "phone_line")
    desk.acknowledge_by_api("2026-04-02 20:10", page)
    desk.event("2026-04-06 08:40", "agent_replied")
    desk.event("2026-04-06 10:20", "resolved")
    assert_quiet_after(desk, "2026-04-06 10:20")
    assert_messages(desk, ATHENTO)
