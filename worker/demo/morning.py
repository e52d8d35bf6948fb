"""A morning at a Mexico City desk, replayed in real time by ``escalera up --demo``. Pure.

Each step is posted ``at`` its offset from the start and says its event happened ``ago`` before
that: tickets arrive with their clocks already running, so under the ``soporte-completo``
preset (P1: first response 30 min, updates every 2 h, tier 2 four hours after the response;
P2: 2 h; P3: 4 h) warnings, a breach and an escalation fall due within the first minutes, and
more keep coming for a quarter of an hour: the first warnings on arrival (MX-1002's 90 % alone:
its 75 % is overdue too, and caught up), an escalation to tier 2 at about a minute, a breach at
two, replies that beat two breaches at six and twelve.

Each ticket also says its team and, once someone has it, its assignee (`TEAMS`), which the
``soporte-completo`` preset does not look at. Under the ``multi-team`` preset (``escalera up
--demo --policy multi-team``) they choose its targets and who is told: MX-1002, an unassigned
Technical incident worked round the clock, breaches on arrival at any hour and its escalation
chain starts on the desk's channel; in New York office hours MX-1003's breach also reaches its
assignee Marco's own channel, and the team leads ten minutes later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.events import Event


@dataclass(frozen=True)
class Step:
    at: timedelta  # when the feed posts it, after the start
    ticket: str
    type: str
    ago: timedelta = timedelta(0)  # how long before posting it happened
    fields: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def _new(at: timedelta, ticket: str, ago: timedelta, priority: str, customer: str) -> Step:
    fields = {"priority": priority, "customer": customer, "subject": SUBJECTS[ticket]}
    return Step(at, ticket, "created", ago, {**fields, **TEAMS[ticket], "channel": "email"})


# What each ticket is about: the end of every page's title.
SUBJECTS = {
    "MX-1001": "Punto de venta caído en sucursal Centro",
    "MX-1002": "Terminales sin conexión desde antes de las 8",
    "MX-1003": "La impresora de cocina no imprime comandas",
    "MX-1004": "El monitor de signos vitales no sincroniza",
    "MX-1005": "Duda sobre la factura de noviembre",
    "MX-1006": "Alta de usuario para la nueva gerente",
    "MX-1007": "Segunda sucursal sin punto de venta",
}

# Each ticket's team, type and assignee, as the portal sends them at creation.
TEAMS: dict[str, dict[str, str]] = {
    "MX-1001": {"group": "Technical", "assignee": "marco@desk.example"},
    "MX-1002": {"group": "Technical", "ticket_type": "incident"},
    "MX-1003": {"group": "Technical", "ticket_type": "incident", "assignee": "marco@desk.example"},
    "MX-1004": {"group": "Technical"},
    "MX-1005": {"group": "Billing", "ticket_type": "question", "assignee": "ana@desk.example"},
    "MX-1006": {"group": "Technical"},
    "MX-1007": {"group": "Technical", "assignee": "marco@desk.example"},
}


NOW = timedelta(0)
MORNING: tuple[Step, ...] = (
    replace(_new(_s(0), "MX-1002", _m(28), "urgent", "transportes-lupita"),
            note="terminals down since before 8; nobody has answered"),
    replace(_new(_s(0), "MX-1005", _m(180), "Normal", "papeleria-el-sol"),
            note="an invoice question, three hours old"),
    replace(_new(_s(5), "MX-1001", _m(22), "Crítico", "farmacias-del-norte"),
            note="point of sale outage"),
    # A portal resending a ticket's history, creation last: counted once it arrives.
    Step(_s(10), "MX-1004", "agent_replied", _m(239), note="answered 9 minutes after creation"),
    Step(_s(10), "MX-1004", "agent_replied", _m(155), note="customer updated"),
    Step(_s(10), "MX-1004", "agent_replied", _m(86), note="customer updated"),
    replace(_new(_s(10), "MX-1004", _m(248), "Crítico", "hospital-san-rafael"),
            note="tier 2 is due 4 h after the first response"),
    _new(_s(15), "MX-1003", _m(89) + _s(30), "Alto", "cafe-la-huerta"),
    Step(_s(30), "MX-1002", "agent_replied", NOW, {"automatic": True},
         "an automatic acknowledgement: it does not stop the clock"),
    Step(_s(90), "MX-1004", "assigned", NOW, {"tier": 2}, "tier 2 takes it"),
    _new(_s(120), "MX-1006", NOW, "Alto", "constructora-rio"),
    Step(_s(200), "MX-1006", "agent_replied", NOW, note="answered in 80 seconds"),
    replace(_new(_s(300), "MX-1007", _m(21) + _s(30), "Crítico", "farmacias-del-norte"),
            note="a second store is down"),
    Step(_s(360), "MX-1001", "agent_replied", NOW, note="answered before the breach"),
    Step(_s(420), "MX-1002", "agent_replied", NOW, note="answered at last, after the breach"),
    Step(_s(720), "MX-1007", "agent_replied", NOW, note="answered before the breach"),
)  # fmt: skip


def morning_events(
    start: datetime, steps: tuple[Step, ...] = MORNING, tag: str = ""
) -> Iterator[tuple[datetime, Event, Step]]:
    """Each step's posting time and event, for a feed starting at ``start`` (aware).

    ``tag`` is appended to ticket and event ids, so a feed into a database that already holds
    an earlier run's tickets starts new ones.
    """
    for number, step in enumerate(steps, 1):
        posted = start + step.at
        event = Event.model_validate(
            {
                "event_id": f"demo-{number:03d}{tag}",
                "ticket_id": f"{step.ticket}{tag}",
                "type": step.type,
                "occurred_at": posted - step.ago,
                **step.fields,
            }
        )
        yield posted, event, step
