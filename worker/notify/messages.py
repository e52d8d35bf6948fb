"""The words of a notification, in the policy's language (Spanish or English). Pure.

`render` is one checkpoint's message; `render_digest` is the one message a storm of them
becomes on a channel (``docs/notifications-storms.md``): a count by priority, then one line per
notification with its headline, subject, deadline and dedupe key.

A title says what happened to which ticket, then what the ticket is about: its subject, cut to
`SUBJECT_IN_TITLE` characters so the title stays readable in a chat or an inbox. The body has
the subject whole and, when known, the ticket's group and assignee.

Every field copied from a ticket is put on one line first (`worker.notify.safe_text`): a ticket
id with a newline cannot add a line (a fake acknowledgement link) to a title or a body.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from scheduler.context import shorten
from worker.notify.safe_text import one_line, path_part

SUBJECT_IN_TITLE = 80  # characters of the subject a title or a digest line shows, at most


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointFacts:
    """What every message about one checkpoint says (`worker.notify.facts.checkpoint_facts`)."""

    ticket_id: str
    source: str
    customer: str | None
    priority: str
    plan: str
    kind: str  # warning, breach, escalation, reminder
    metric: str
    percent: int | None
    tier: int | None
    due_at: datetime  # the deadline the message is about
    # a warning by time: the working time that was left when it fell due (`scheduler.time_left`)
    time_left: timedelta | None = None
    tz: ZoneInfo  # the deadline is shown in it
    link: str | None  # the ticket in its portal
    # the ticket's context as last stored (`scheduler.context`); None: not known
    subject: str | None = None
    group: str | None = None
    assignee: str | None = None
    # a recurring incident (kind problem, problem_solved): its key, and its tickets or the
    # customers who reported it (`worker.notify.problem_rule`)
    problem: str | None = None
    listing: tuple[str, ...] = ()

    def message(self, dedupe_key: str, ack_link: str | None = None) -> MessageFacts:
        """The facts of one of its messages: these, with that message's key and ack link."""
        return MessageFacts(
            ticket_id=self.ticket_id,
            source=self.source,
            customer=self.customer,
            priority=self.priority,
            plan=self.plan,
            kind=self.kind,
            metric=self.metric,
            percent=self.percent,
            tier=self.tier,
            due_at=self.due_at,
            time_left=self.time_left,
            tz=self.tz,
            link=self.link,
            subject=self.subject,
            group=self.group,
            assignee=self.assignee,
            problem=self.problem,
            listing=self.listing,
            dedupe_key=dedupe_key,
            ack_link=ack_link,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFacts(CheckpointFacts):
    """What one message says: its checkpoint's facts, its dedupe key and acknowledgement link."""

    dedupe_key: str
    ack_link: str | None = None
    # an acknowledgement notice (`worker.notify.outbox.ACK_NOTICE`): who acknowledged the
    # page, and when; the chain's channels it told hear that nobody else will be
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    # what a one-checkpoint message is about, for a channel that acts on the ticket itself (the
    # write-back to its portal: `worker.notify.writeback`); None for a digest
    facts: MessageFacts | None = None


_METRICS = {
    "en": {
        "first_response": "first response",
        "update": "customer update",
        "next_reply": "next reply",
        "resolution": "resolution",
        "escalation": "escalation",
    },
    "es": {
        "first_response": "primera respuesta",
        "update": "actualización al cliente",
        "next_reply": "próxima respuesta",
        "resolution": "resolución",
        "escalation": "escalado",
    },
}
_HEADLINES = {
    "en": {
        "warning": "{percent}% of the {metric} time used",
        "warning_left": "{left} left on {metric}",
        "warning_left_one": "{left} left on {metric}",
        "breach": "{metric} breached",
        "escalation": "escalate to tier {tier}",
        "reminder": "{metric} still overdue",
        "problem": "recurring incident {problem}: {count} tickets",
        "problem_solved": "problem {problem} solved: tell the {count} customers who reported it",
    },
    "es": {
        "warning": "{percent}% del tiempo de {metric} consumido",
        "warning_left": "quedan {left} de {metric}",
        "warning_left_one": "queda {left} de {metric}",
        "breach": "{metric} incumplida",
        "escalation": "escalar a nivel {tier}",
        "reminder": "{metric} sigue vencida",
        "problem": "incidente recurrente {problem}: {count} tickets",
        "problem_solved": (
            "problema {problem} resuelto: avisar a los {count} clientes que lo reportaron"
        ),
    },
}
# a warning by time says its working time left in words: "1 hour and 30 minutes"
_UNITS = {
    "en": ((3600, "hour", "hours"), (60, "minute", "minutes"), (1, "second", "seconds")),
    "es": ((3600, "hora", "horas"), (60, "minuto", "minutos"), (1, "segundo", "segundos")),
}
_AND = {"en": " and ", "es": " y "}
_LINES = {
    "en": {
        "ticket": "Ticket",
        "subject": "Subject",
        "group": "Group",
        "assignee": "Assignee",
        "quoted": '"{subject}"',
        "customer": "Customer",
        "priority": "Priority",
        "deadline": "Deadline",
        "left": "{span} left",
        "overdue": "{span} overdue",
        "open": "Open the ticket",
        "ack": "Acknowledge",
        "key": "Notification",
        "problem": "Tickets",
        "problem_solved": "Customers who reported it",
        "storm": "Storm: {n} SLA alerts at once ({counts})",
        "storm_intro": "{n} notifications fell due together; this one message lists them all.",
        "held": "Quiet hours over: {n} SLA alerts held ({counts})",
        "held_intro": "{n} notifications fell due in this route's quiet hours; here they all are.",
        "acked": "acknowledged by {by}",
        "acked_line": "Acknowledged by {by} at {at}: the escalation stops, nobody else is told.",
    },
    "es": {
        "ticket": "Ticket",
        "subject": "Asunto",
        "group": "Grupo",
        "assignee": "Asignado a",
        "quoted": "«{subject}»",
        "customer": "Cliente",
        "priority": "Prioridad",
        "deadline": "Plazo",
        "left": "quedan {span}",
        "overdue": "vencido hace {span}",
        "open": "Abrir el ticket",
        "ack": "Confirmar recepción",
        "key": "Notificación",
        "problem": "Tickets",
        "problem_solved": "Clientes que lo reportaron",
        "storm": "Tormenta: {n} alertas de SLA a la vez ({counts})",
        "storm_intro": "{n} notificaciones vencieron a la vez; este mensaje las reúne todas.",
        "held": "Fin del horario de silencio: {n} alertas de SLA retenidas ({counts})",
        "held_intro": "{n} notificaciones vencieron fuera del horario de esta ruta; aquí están.",
        "acked": "confirmado por {by}",
        "acked_line": (
            "Confirmado por {by} el {at}: el escalado se detiene, no se avisa a nadie más."
        ),
    },
}


def render(language: str, facts: MessageFacts, now: datetime) -> Message:
    facts = _one_line(facts)
    lang = _lang(language)
    words = _LINES[lang]
    headline = _headline(lang, facts)
    acked: list[str] = []
    if facts.acknowledged_by is not None:  # an acknowledgement notice: who, before what
        headline = f"{words['acked'].format(by=facts.acknowledged_by)}: {headline}"
        at = facts.acknowledged_at or now
        when = f"{at.astimezone(facts.tz):%Y-%m-%d %H:%M %Z}"
        acked = [words["acked_line"].format(by=facts.acknowledged_by, at=when)]
    title = f"[{facts.priority}] {facts.source}/{facts.ticket_id}: {headline}"
    title += _quoted_subject(lang, facts)
    lines = [
        *acked,
        f"{words['ticket']}: {facts.source}/{facts.ticket_id} ({facts.plan})",
        *_known(words, "subject", facts.subject),
        f"{words['customer']}: {facts.customer or '—'}",
        *_known(words, "group", facts.group),
        *_known(words, "assignee", facts.assignee),
        f"{words['priority']}: {facts.priority}",
        f"{words['deadline']}: {_deadline(lang, facts, now)}",
    ]
    if facts.kind in ("problem", "problem_solved"):
        lines.append(f"{words[facts.kind]}: {', '.join(facts.listing) or '—'}")
    if facts.link:
        lines.append(f"{words['open']}: {facts.link}")
    if facts.ack_link:
        lines.append(f"{words['ack']}: {facts.ack_link}")
    lines.append(f"{words['key']}: {facts.dedupe_key}")
    return Message(title=title[:250], body="\n".join(lines), facts=facts)


def render_digest(
    language: str, items: Sequence[MessageFacts], now: datetime, *, held: bool = False
) -> Message:
    """One message for many notifications to the same channel; every dedupe key is in it.
    ``held``: those a route kept in its quiet hours, released together."""
    lines = [(facts, facts.dedupe_key, facts.ack_link) for facts in items]
    return render_digest_lines(language, lines, now, held=held, last=items[-1])


def render_digest_lines(
    language: str,
    items: Sequence[tuple[CheckpointFacts, str, str | None]],
    now: datetime,
    *,
    held: bool = False,
    last: MessageFacts,
) -> Message:
    """`render_digest` of (checkpoint facts, dedupe key, ack link) per notification: a storm's
    notifications need no `MessageFacts` each, only ``last`` (the message's `Message.facts`)."""
    items = [(_checkpoint_one_line(facts), key, ack_link) for facts, key, ack_link in items]
    lang = _lang(language)
    words = _LINES[lang]
    by_priority = Counter(facts.priority or "—" for facts, _, _ in items)
    counts = ", ".join(f"{p} ×{n}" for p, n in sorted(by_priority.items()))
    kind = "held" if held else "storm"
    title = words[kind].format(n=len(items), counts=counts)
    lines = [words[f"{kind}_intro"].format(n=len(items)), ""]
    # a storm is many notifications of few kinds and deadlines: word each once
    headlines: dict[tuple[str, str, int | None, int | None, timedelta | None], str] = {}
    deadlines: dict[tuple[datetime, ZoneInfo], str] = {}
    deadline_word, key_word = f" · {words['deadline']}: ", f" · {words['key']}: "
    for facts, key, ack_link in items:
        what = (facts.kind, facts.metric, facts.percent, facts.tier, facts.time_left)
        if what not in headlines:
            headlines[what] = _headline(lang, facts)
        when = (facts.due_at, facts.tz)
        if when not in deadlines:
            deadlines[when] = _deadline(lang, facts, now)
        lines.append(
            f"- [{facts.priority}] {facts.source}/{facts.ticket_id}: {headlines[what]}"
            f"{_quoted_subject(lang, facts)}{deadline_word}{deadlines[when]}"
            f"{key_word}{one_line(key)}"
        )
        if ack_link:
            lines.append(f"  {words['ack']}: {one_line(ack_link)}")
    return Message(title=title[:250], body="\n".join(lines), facts=_one_line(last))


def _lang(language: str) -> str:
    return language if language in _LINES else "en"


def _quoted_subject(lang: str, facts: CheckpointFacts) -> str:
    """`` — "subject"`` (cut) after a headline, or nothing when the subject is not known."""
    if not facts.subject:
        return ""
    return " — " + _LINES[lang]["quoted"].format(subject=shorten(facts.subject, SUBJECT_IN_TITLE))


def _known(words: dict[str, str], name: str, value: str | None) -> list[str]:
    """A body line for a context field, or none when it is not known."""
    return [f"{words[name]}: {value}"] if value else []


def _headline(lang: str, facts: CheckpointFacts) -> str:
    metric = _METRICS[lang].get(facts.metric, facts.metric)
    if facts.kind == "warning" and facts.time_left is not None:
        left, one = _time_left(lang, facts.time_left)
        return _HEADLINES[lang]["warning_left_one" if one else "warning_left"].format(
            left=left, metric=metric
        )
    return _HEADLINES[lang][facts.kind].format(
        percent=facts.percent,
        metric=metric,
        tier=facts.tier,
        problem=facts.problem,
        count=len(facts.listing),
    )


def _time_left(lang: str, left: timedelta) -> tuple[str, bool]:
    """``left`` in words ("1 hour and 30 minutes", "30 minutos"), and whether it is one unit
    of one (Spanish says "queda 1 hora" but "quedan 30 minutos")."""
    seconds, parts = int(left.total_seconds()), []
    for size, one, many in _UNITS[lang]:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {one if amount == 1 else many}")
    words = ", ".join(parts[:-1]) + _AND[lang] + parts[-1] if len(parts) > 1 else parts[0]
    return words, len(parts) == 1 and parts[0].startswith("1 ")


def _deadline(lang: str, facts: CheckpointFacts, now: datetime) -> str:
    left = facts.due_at - now
    # at the deadline itself the clock is used up: overdue, not "0m left"
    when = _LINES[lang]["left" if left > timedelta(0) else "overdue"].format(span=_span(abs(left)))
    return f"{facts.due_at.astimezone(facts.tz):%Y-%m-%d %H:%M %Z} ({when})"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes or not parts else []
    return " ".join(parts)


def ticket_link(template: str, ticket_id: str) -> str:
    """A policy's ``ticket_links`` template with the id URL-encoded as one path part."""
    return template.format(ticket_id=path_part(ticket_id))


_Facts = TypeVar("_Facts", bound=CheckpointFacts)


def _checkpoint_one_line(facts: _Facts) -> _Facts:
    """``facts`` with every text a ticket or a link brings on one line, without controls."""
    texts = (facts.ticket_id, facts.source, facts.customer, facts.priority, facts.plan)
    context = (facts.subject, facts.group, facts.assignee, facts.link, facts.problem)
    if "".join(text or "" for text in (*texts, *context, *facts.listing)).isprintable():
        return facts  # nearly always: a storm renders a digest line per page
    return replace(
        facts,
        ticket_id=one_line(facts.ticket_id),
        source=one_line(facts.source),
        customer=None if facts.customer is None else one_line(facts.customer),
        priority=one_line(facts.priority),
        plan=one_line(facts.plan),
        subject=None if facts.subject is None else one_line(facts.subject),
        group=None if facts.group is None else one_line(facts.group),
        assignee=None if facts.assignee is None else one_line(facts.assignee),
        problem=None if facts.problem is None else one_line(facts.problem),
        listing=tuple(one_line(item) for item in facts.listing),
        link=None if facts.link is None else one_line(facts.link),
    )


def _one_line(facts: MessageFacts) -> MessageFacts:
    """`_checkpoint_one_line`, and the message's own texts: its key, ack link, who acked."""
    facts = _checkpoint_one_line(facts)
    if "".join(
        t or "" for t in (facts.dedupe_key, facts.ack_link, facts.acknowledged_by)
    ).isprintable():
        return facts
    return replace(
        facts,
        dedupe_key=one_line(facts.dedupe_key),
        ack_link=None if facts.ack_link is None else one_line(facts.ack_link),
        acknowledged_by=None if facts.acknowledged_by is None else one_line(facts.acknowledged_by),
    )
