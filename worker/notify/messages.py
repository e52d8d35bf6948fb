"""The words of a notification, in the policy's language (Spanish or English). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class MessageFacts:
    ticket_id: str
    source: str
    customer: str | None
    priority: str
    plan: str
    kind: str  # warning, breach, escalation, reminder
    metric: str
    percent: int | None
    tier: int | None
    due_at: datetime
    tz: ZoneInfo
    link: str | None
    dedupe_key: str
    ack_link: str | None = None


@dataclass(frozen=True)
class Message:
    title: str
    body: str


_METRICS = {
    "en": {
        "first_response": "first response",
        "update": "customer update",
        "resolution": "resolution",
        "escalation": "escalation",
    },
    "es": {
        "first_response": "primera respuesta",
        "update": "actualización al cliente",
        "resolution": "resolución",
        "escalation": "escalado",
    },
}
_HEADLINES = {
    "en": {
        "warning": "{percent}% of the {metric} time used",
        "breach": "{metric} breached",
        "escalation": "escalate to tier {tier}",
        "reminder": "{metric} still overdue",
    },
    "es": {
        "warning": "{percent}% del tiempo de {metric} consumido",
        "breach": "{metric} incumplida",
        "escalation": "escalar a nivel {tier}",
        "reminder": "{metric} sigue vencida",
    },
}
_LINES = {
    "en": {
        "ticket": "Ticket",
        "customer": "Customer",
        "priority": "Priority",
        "deadline": "Deadline",
        "left": "{span} left",
        "overdue": "{span} overdue",
        "open": "Open the ticket",
        "ack": "Acknowledge",
        "key": "Notification",
    },
    "es": {
        "ticket": "Ticket",
        "customer": "Cliente",
        "priority": "Prioridad",
        "deadline": "Plazo",
        "left": "quedan {span}",
        "overdue": "vencido hace {span}",
        "open": "Abrir el ticket",
        "ack": "Confirmar recepción",
        "key": "Notificación",
    },
}


def render(language: str, facts: MessageFacts, now: datetime) -> Message:
    lang = language if language in _LINES else "en"
    words = _LINES[lang]
    metric = _METRICS[lang].get(facts.metric, facts.metric)
    headline = _HEADLINES[lang][facts.kind].format(
        percent=facts.percent, metric=metric, tier=facts.tier
    )
    title = f"[{facts.priority}] {facts.source}/{facts.ticket_id}: {headline}"
    left = facts.due_at - now
    # at the deadline itself the clock is used up: overdue, not "0m left"
    when = words["left" if left > timedelta(0) else "overdue"].format(span=_span(abs(left)))
    lines = [
        f"{words['ticket']}: {facts.source}/{facts.ticket_id} ({facts.plan})",
        f"{words['customer']}: {facts.customer or '—'}",
        f"{words['priority']}: {facts.priority}",
        f"{words['deadline']}: {facts.due_at.astimezone(facts.tz):%Y-%m-%d %H:%M %Z} ({when})",
    ]
    if facts.link:
        lines.append(f"{words['open']}: {facts.link}")
    if facts.ack_link:
        lines.append(f"{words['ack']}: {facts.ack_link}")
    lines.append(f"{words['key']}: {facts.dedupe_key}")
    return Message(title=title[:250], body="\n".join(lines))


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes or not parts else []
    return " ".join(parts)
