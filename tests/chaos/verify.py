"""Checking a run: accepted events stored, due checkpoints fired, each notification once.

The owed set comes from `tests.chaos.expected` (the pure core on the events the replayer got a
202 for); the database and the sinks only say what the system did.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from shared.events import Event
from shared.policy import Policy
from tests.chaos.expected import (
    CHAIN,
    CHAIN_KEY,
    CHAIN_ROUTE,
    TicketKey,
    caught_up,
    chain_pages,
    channels_for,
    justified,
    must_fire,
)
from tests.chaos.monkey import SHORTEST_DOWN_S
from tests.chaos.services import Sink

Owed = tuple[str, str, str, str, str]  # ticket, checkpoint key, route, channel, message number
# When a firing could have known an event: the worker logs `event_applied` just after the
# commit of the event's batch, so an event logged before the firing was committed before it.
# `received_at` is only when the batch began (a batch under load took 1.4 s to commit, seen in
# the first full-size run): an event the log does not name (its worker killed between commit
# and log) counts from this long after it.
COMMIT_RACE = timedelta(seconds=1)
_TICKET = re.compile(
    r"\] api/([^:]+):"
)  # "[P1] api/T-1: first response breached"  # ticket, checkpoint key, route, channel


@dataclass
class Stored:
    events: dict[str, list[tuple[datetime, Event]]]  # ticket -> (received_at, event)
    checkpoints: dict[int, dict[str, Any]]
    notifications: list[dict[str, Any]]
    applied_at: dict[str, datetime] = field(default_factory=dict)  # event id -> first logged
    sent_at: dict[int, datetime] = field(default_factory=dict)  # notification id -> first logged
    dead_letters: set[str] = field(default_factory=set)  # event ids kept aside: accounted for
    acks: dict[tuple[int, str], datetime] = field(default_factory=dict)  # (checkpoint, route)

    def known_by(self, ticket: str, at: datetime) -> list[list[Event]]:
        """What a firing at ``at`` could have seen of the ticket's events: at least those
        certainly committed (logged, see COMMIT_RACE), at most those whose batch had begun
        (``received_at``), and each set between, the undecided ones taken in the order they
        were received (a ticket's events are applied in that order, batch after batch)."""
        events = self.events.get(ticket, [])
        least = [e for r, e in events if self.applied_at.get(e.event_id, r + COMMIT_RACE) <= at]
        undecided = [e for r, e in events if r <= at and e not in least]
        return [least + undecided[:n] for n in range(len(undecided) + 1)]


def applied_times(logs: Path) -> dict[str, datetime]:
    """Each event's first ``event_applied`` in the workers' logs (written after the commit)."""
    return _first_logged(logs, "event_applied", "event_id")


def sent_times(logs: Path) -> dict[int, datetime]:
    """Each notification's first ``notification_delivery`` as sent, or the first
    ``digest_delivery`` that names it (both logged after the commit)."""
    first = _first_logged(logs, "notification_delivery", "notification_id", outcome="sent")
    digests = _first_logged(logs, "digest_delivery", "notification_ids", outcome="sent")
    for key, at in digests.items():
        if key not in first or at < first[key]:
            first[key] = at
    return {int(key): at for key, at in first.items()}


def _first_logged(logs: Path, event: str, field_name: str, **match: str) -> dict[str, datetime]:
    """The first time each value of ``field_name`` (or of each item, if it is a list) was
    logged in an ``event`` line matching ``match``."""
    first: dict[str, datetime] = {}
    for log in logs.glob("worker*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if f'"{event}"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            if record.get("event") != event or any(record.get(k) != v for k, v in match.items()):
                continue
            at = datetime.fromisoformat(record["timestamp"])
            value = record.get(field_name)
            for key in map(str, value if isinstance(value, list) else [value or ""]):
                if key and (key not in first or at < first[key]):
                    first[key] = at
    return first


def read_database(url: str, ticket_prefix: str, logs: Path | None = None) -> Stored:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database
    ) as conn:
        like = f"{ticket_prefix}%"
        events: dict[str, list[tuple[datetime, Event]]] = {}
        for ticket, received, payload in conn.execute(
            "SELECT t.ticket_id, e.received_at, e.payload FROM events e"
            " JOIN tickets t ON t.id = e.ticket_pk WHERE t.ticket_id LIKE %s",
            (like,),
        ):
            events.setdefault(ticket, []).append((received, Event.model_validate(payload)))
        columns = ["id", "ticket", "key", "kind", "state", "due_at", "fired_at"]
        checkpoints = {
            row[0]: dict(zip(columns, row, strict=True))
            for row in conn.execute(
                "SELECT c.id, t.ticket_id, c.key, c.kind, c.state, c.due_at, c.fired_at"
                " FROM checkpoints c JOIN tickets t ON t.id = c.ticket_pk"
                " WHERE t.ticket_id LIKE %s",
                (like,),
            )
        }
        ncols = ["id", "checkpoint_id", "route", "channel", "dedupe_key", "status", "attempts"]
        notifications = [
            dict(zip(ncols, row, strict=True))
            for row in conn.execute(
                "SELECT n.id, n.checkpoint_id, n.route, n.channel, n.dedupe_key, n.status,"
                " n.attempts FROM notifications n WHERE n.checkpoint_id = ANY(%s)",
                (list(checkpoints),),
            )
        ]
        dead = {
            event_id
            for (event_id,) in conn.execute(
                "SELECT event_id FROM dead_letters WHERE ticket_id LIKE %s", (like,)
            )
        }
        acks = {
            (cid, route): at
            for cid, route, at in conn.execute(
                "SELECT checkpoint_id, route, acknowledged_at FROM acknowledgements"
                " WHERE checkpoint_id = ANY(%s)",
                (list(checkpoints),),
            )
        }
    if logs is None:
        return Stored(events, checkpoints, notifications, dead_letters=dead, acks=acks)
    return Stored(
        events, checkpoints, notifications, applied_times(logs), sent_times(logs), dead, acks
    )


@dataclass
class Verdict:
    tickets: int = 0
    events_accepted: int = 0
    events_missing: list[str] = field(default_factory=list)  # in neither events nor dead letters
    events_dead_lettered: int = 0
    forgiven: list[str] = field(default_factory=list)  # missing, but reported apart
    must_fire: int = 0
    fired: int = 0
    checkpoints_lost: list[TicketKey] = field(default_factory=list)
    fired_unjustified: list[TicketKey] = field(default_factory=list)
    fired_early_justified: int = 0  # met per the whole history, due per what had arrived
    # fired late with a later checkpoint of its clock (catch_up: latest): paging it or not is
    # right, depending on which of the two the worker had stored when it fired
    caught_up: list[TicketKey] = field(default_factory=list)
    notifications_owed: int = 0
    notifications_delivered: int = 0  # distinct owed notifications seen at the sinks
    notifications_lost: list[Owed] = field(default_factory=list)
    duplicated: int = 0  # messages received beyond the first of each dedupe key
    # (dedupe key, first arrival, later arrivals): a re-send, for the worker-kill check
    duplicates: list[tuple[Owed, datetime, list[datetime]]] = field(default_factory=list)
    resent_after_kill: int = 0  # of `duplicated`: explained by a kill (see `excuse_resends`)
    recorded_at: dict[Owed, datetime] = field(default_factory=dict)  # first send committed
    unexpected_messages: int = 0
    dead: list[dict[str, Any]] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)  # due (per the core) -> at the sink
    # escalation chains (`judge_chains`): pages that walk one, the messages of theirs seen
    chain_pages: int = 0
    chain_messages: int = 0
    chain_acknowledged: int = 0  # pages a person acknowledged (`tests.chaos.acker`)
    chain_skipped: list[Owed] = field(default_factory=list)  # arrived, an earlier one never did
    chain_after_ack: list[Owed] = field(default_factory=list)  # arrived after the ack (+ race)
    # (message, its predecessor's arrival, when it was due at the latest): owed, never arrived
    chain_missing: list[tuple[Owed, datetime, datetime]] = field(default_factory=list)
    chain_stalled_by_kill: int = 0  # of `chain_missing`: a kill explains it (`excuse_stalls`)
    # who acknowledged, told to the chain's channels that had a message: seen, owed and not
    # seen, seen without an acknowledgement
    chain_notices: int = 0
    chain_notices_missing: list[Owed] = field(default_factory=list)
    chain_notices_unowed: list[Owed] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.events_missing
            or self.checkpoints_lost
            or self.fired_unjustified
            or self.notifications_lost
            or self.duplicated > self.resent_after_kill
            or self.unexpected_messages
            or self.chain_skipped
            or self.chain_after_ack
            or len(self.chain_missing) > self.chain_stalled_by_kill
            or self.chain_notices_missing
            or self.chain_notices_unowed
        )

    def summary(self) -> dict[str, Any]:
        late = sorted(self.lateness_s)
        return {
            "tickets": self.tickets,
            "events": self.events_accepted,
            "events_missing": len(self.events_missing) + len(self.forgiven),
            "events_dead_lettered": self.events_dead_lettered,
            "checkpoints_due": self.must_fire,
            "checkpoints_fired": self.fired,
            "checkpoints_lost": len(self.checkpoints_lost),
            "fired_unjustified": len(self.fired_unjustified),
            "fired_early_justified": self.fired_early_justified,
            "caught_up": len(self.caught_up),
            "notifications": self.notifications_owed,
            "delivered": self.notifications_delivered,
            "lost": len(self.notifications_lost),
            "duplicated": self.duplicated,
            "resent_after_worker_kill": self.resent_after_kill,
            "unexpected": self.unexpected_messages,
            "dead": len(self.dead),
            "lateness_p50_s": _pct(late, 0.50),
            "lateness_p99_s": _pct(late, 0.99),
            "lateness_max_s": late[-1] if late else None,
            "chain_pages": self.chain_pages,
            "chain_messages": self.chain_messages,
            "chain_acknowledged": self.chain_acknowledged,
            "chain_skipped": len(self.chain_skipped),
            "chain_after_ack": len(self.chain_after_ack),
            "chain_missing": len(self.chain_missing),
            "chain_stalled_by_kill": self.chain_stalled_by_kill,
            "chain_notices": self.chain_notices,
            "chain_notices_missing": len(self.chain_notices_missing),
            "chain_notices_unowed": len(self.chain_notices_unowed),
        }

    def explain(self) -> str:
        return (
            f"{self.summary()}\nmissing events: {self.events_missing[:10]}\n"
            f"lost checkpoints: {self.checkpoints_lost[:10]}\n"
            f"fired without cause: {self.fired_unjustified[:10]}\n"
            f"lost notifications: {self.notifications_lost[:10]}\n"
            f"repeats (notification, first arrival, later ones): {self.duplicates[:10]}\n"
            f"chain steps skipped: {self.chain_skipped[:10]}\n"
            f"chain steps after an acknowledgement: {self.chain_after_ack[:10]}\n"
            f"chain steps missing (message, previous arrival, due by): {self.chain_missing[:10]}\n"
            f"acknowledgement notices missing: {self.chain_notices_missing[:10]}\n"
            f"acknowledgement notices without an acknowledgement: {self.chain_notices_unowed[:10]}"
        )


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def judge(
    policy: Policy,
    accepted: list[dict[str, Any]],
    after: datetime,
    stored: Stored,
    sinks: list[Sink],
    *,
    owed_channels: set[str] | None = None,
    due: dict[TicketKey, tuple[str, datetime]] | None = None,
) -> Verdict:
    """Compare what was owed with what the database and the sinks saw (``due``: `must_fire`
    of the same events, when the caller has it already).

    ``owed_channels`` limits the notifications owed to those channels (the sink test checks
    a dead channel's notifications by their status instead).
    """
    verdict = Verdict(events_accepted=len(accepted))
    stored_ids = {e.event_id for evs in stored.events.values() for _, e in evs}
    verdict.tickets = len({e["ticket_id"] for e in accepted})
    not_stored = {e["event_id"] for e in accepted} - stored_ids
    verdict.events_missing = sorted(not_stored - stored.dead_letters)
    verdict.events_dead_lettered = len(not_stored & stored.dead_letters)

    due = must_fire(policy, accepted, after) if due is None else due
    verdict.must_fire = len(due)
    fired = {
        (row["ticket"], row["key"]): row
        for row in stored.checkpoints.values()
        if row["state"] == "fired"
    }
    verdict.fired = len(fired)
    verdict.checkpoints_lost = sorted(set(due) - set(fired))
    for ticket_key in sorted(set(fired) - set(due)):
        row = fired[ticket_key]
        # Justified if due as of any set the worker may have committed by then: the smallest
        # may lack the created event of a batch whose worker was killed before its log line;
        # the largest may hold a reply whose batch committed only after the firing; between
        # them, the reopening was committed and the reply after it not yet.
        if any(
            justified(policy, known, row["key"], row["fired_at"])
            for known in stored.known_by(row["ticket"], row["fired_at"])
        ):
            verdict.fired_early_justified += 1
        else:
            verdict.fired_unjustified.append(ticket_key)

    verdict.caught_up = _caught_up(policy, stored, fired, due)
    excused = set(verdict.caught_up)
    kinds = {key: row["kind"] for key, row in fired.items()} | {k: v[0] for k, v in due.items()}
    chains = chain_pages(policy, accepted)
    owed = {
        (ticket, key, route, channel, "0")
        for (ticket, key), kind in kinds.items()
        if (ticket, key) not in excused
        for route, channel in channels_for(kind) + _chain_start(chains, ticket, key)
        if owed_channels is None or channel in owed_channels
    }
    verdict.notifications_owed = len(owed)

    tickets = {e["ticket_id"] for e in accepted}
    arrivals = _arrivals(verdict, stored, sinks, tickets)
    verdict.duplicated = sum(len(times) - 1 for times in arrivals.values())
    verdict.duplicates = [(k, v[0], v[1:]) for k, v in arrivals.items() if len(v) > 1]
    verdict.recorded_at = _recorded(stored, {item for item, _first, _later in verdict.duplicates})
    verdict.notifications_delivered = len(set(arrivals) & owed)
    verdict.notifications_lost = sorted(owed - set(arrivals))
    verdict.unexpected_messages += sum(
        1
        for item in set(arrivals) - owed
        if (owed_channels is None or item[3] in owed_channels)
        and item[:2] not in excused
        and not _later_in_chain(item, chains)
    )
    verdict.lateness_s = [
        (times[0] - due[item[:2]][1]).total_seconds()
        for item, times in arrivals.items()
        if item[:2] in due and item[4] == "0"
    ]
    if owed_channels is None or CHAIN[0][0] in owed_channels:
        judge_chains(verdict, chains, stored, arrivals, {k for k in due if k[1] == CHAIN_KEY})
    verdict.dead = [n for n in stored.notifications if n["status"] == "dead"]
    return verdict


def _caught_up(
    policy: Policy,
    stored: Stored,
    fired: dict[TicketKey, dict[str, Any]],
    due: dict[TicketKey, tuple[str, datetime]],
) -> list[TicketKey]:
    """Fired checkpoints the catch-up rule may have silenced: a later one of the same clock
    was due when it fired, per the core on what the worker may have stored by then.

    Only those fired after a later checkpoint of their clock fell due (per the whole history
    or the rows) are re-evaluated: on time, nothing catches a checkpoint up.
    """
    dues: dict[str, list[datetime]] = {}
    for (ticket, key), (_kind, at) in due.items():
        dues.setdefault(f"{ticket}|{key.split(':', 1)[0]}", []).append(at)
    for (ticket, key), row in fired.items():
        dues.setdefault(f"{ticket}|{key.split(':', 1)[0]}", []).append(row["due_at"])
    out = []
    for (ticket, key), row in sorted(fired.items()):
        later = dues.get(f"{ticket}|{key.split(':', 1)[0]}", [])
        if not any(row["due_at"] < at <= row["fired_at"] for at in later):
            continue
        if any(
            caught_up(policy, known, key, row["kind"], row["fired_at"])
            for known in stored.known_by(ticket, row["fired_at"])
        ):
            out.append((ticket, key))
    return out


# The last part of an acknowledgement notice's dedupe key (`worker.notify.outbox.ACKNOWLEDGED`).
ACK_NOTICE_KEY = "acknowledged"
# A step whose delivery read its page unacknowledged just before the acknowledgement committed
# goes out after it: it may reach the sink this much after the acknowledgement's instant.
ACK_RACE = timedelta(seconds=2)
# A chain's next message is owed once its page still stood this long after it was due: beat's
# tick, the repeat task and the delivery, on a loaded machine (lateness p99 reached 14 s).
CHAIN_SLACK = timedelta(seconds=15)


def _chain_start(chains: dict[str, datetime], ticket: str, key: str) -> list[tuple[str, str]]:
    """The chain's first message, owed like any page, for a checkpoint that walks one."""
    return [(CHAIN_ROUTE, CHAIN[0][0])] if key == CHAIN_KEY and ticket in chains else []


def _later_in_chain(item: Owed, chains: dict[str, datetime]) -> bool:
    """A chain's second message on: owed or not as `judge_chains` says, never unexpected."""
    ticket, key, route, _channel, number = item
    return route == CHAIN_ROUTE and key == CHAIN_KEY and ticket in chains and number != "0"


def judge_chains(
    verdict: Verdict,
    chains: dict[str, datetime],
    stored: Stored,
    arrivals: dict[Owed, list[datetime]],
    breached: set[TicketKey],
) -> None:
    """Each chain walked in order (no message without the one before it), none of its messages
    after its page's acknowledgement, and each owed one there. The message after one that
    arrived is owed once its page still stood `CHAIN_SLACK` after it was due: not acknowledged,
    not answered, not resolved (``chains``: when each ticket's page stops standing). Messages
    sent twice are counted with every other duplicate."""
    checkpoint_ids = {(row["ticket"], row["key"]): cid for cid, row in stored.checkpoints.items()}
    for ticket, key in sorted(page for page in breached if page[0] in chains):
        verdict.chain_pages += 1
        first: dict[int, datetime] = {}
        for number, (channel, _wait) in enumerate(CHAIN):
            if times := arrivals.get((ticket, key, CHAIN_ROUTE, channel, str(number))):
                first[number] = times[0]
        verdict.chain_messages += len(first)
        ack = stored.acks.get((checkpoint_ids.get((ticket, key), -1), CHAIN_ROUTE))
        verdict.chain_acknowledged += ack is not None
        for number, at in sorted(first.items()):
            item = (ticket, key, CHAIN_ROUTE, CHAIN[number][0], str(number))
            if number > 0 and number - 1 not in first:
                verdict.chain_skipped.append(item)
            if number > 0 and ack is not None and at > ack + ACK_RACE:
                verdict.chain_after_ack.append(item)
        last = max(first, default=None)
        _judge_notices(verdict, (ticket, key), first, ack, arrivals)
        wait = None if last is None else CHAIN[last][1]
        if last is None or wait is None:  # a lost first message is a lost notification
            continue
        stood = min(chains[ticket], ack) if ack is not None else chains[ticket]
        due_by = first[last] + wait + CHAIN_SLACK
        if due_by <= stood:
            nxt = (ticket, key, CHAIN_ROUTE, CHAIN[last + 1][0], str(last + 1))
            verdict.chain_missing.append((nxt, first[last], due_by))


def _judge_notices(
    verdict: Verdict,
    page: TicketKey,
    first: dict[int, datetime],
    ack: datetime | None,
    arrivals: dict[Owed, list[datetime]],
) -> None:
    """An acknowledgement that stopped the chain before its end owes each channel whose message
    had arrived (`ACK_RACE` before it) one notice of who acknowledged; none is owed without
    an acknowledgement. Notices sent twice are counted with every other duplicate."""
    channels = dict.fromkeys(channel for channel, _wait in CHAIN)
    seen = {
        (*page, CHAIN_ROUTE, channel, ACK_NOTICE_KEY)
        for channel in channels
        if (*page, CHAIN_ROUTE, channel, ACK_NOTICE_KEY) in arrivals
    }
    verdict.chain_notices += len(seen)
    if ack is None:
        verdict.chain_notices_unowed += sorted(seen)
        return
    if max(first, default=len(CHAIN)) >= len(CHAIN) - 1:
        return  # told to its end before the acknowledgement: nothing stopped
    told = {CHAIN[n][0] for n, at in first.items() if at < ack - ACK_RACE}
    owed = {(*page, CHAIN_ROUTE, channel, ACK_NOTICE_KEY) for channel in told}
    verdict.chain_notices_missing += sorted(owed - seen)


def excuse_stalls(verdict: Verdict, kills: list[datetime], before_s: float = 2.0) -> None:
    """Count the missing chain messages a kill of the worker or beat explains: one between the
    message before it (``before_s`` earlier, for a send not yet committed) and when it was due
    at the latest may have lost its arming, which beat's reconcile restores within a minute,
    after the page stopped standing here. Any other missing message fails the run."""
    lead = timedelta(seconds=before_s)
    verdict.chain_stalled_by_kill = sum(
        1
        for _item, since, due_by in verdict.chain_missing
        if any(since - lead <= kill <= due_by for kill in kills)
    )


def _recorded(stored: Stored, items: set[Owed]) -> dict[Owed, datetime]:
    """When the first send of each of ``items`` was committed, as the worker logged it."""
    recorded: dict[Owed, datetime] = {}
    for n in stored.notifications:
        checkpoint = stored.checkpoints.get(n["checkpoint_id"])
        at = stored.sent_at.get(n["id"])
        if checkpoint is None or at is None:
            continue
        number = n["dedupe_key"].rsplit(":", 1)[1]
        item = (checkpoint["ticket"], checkpoint["key"], n["route"], n["channel"], number)
        if item in items and (item not in recorded or at < recorded[item]):
            recorded[item] = at
    return recorded


def _arrivals(
    verdict: Verdict, stored: Stored, sinks: list[Sink], tickets: set[str]
) -> dict[Owed, list[datetime]]:
    """When each notification about ``tickets`` reached a sink, by its dedupe key
    (checkpoint:route:channel:n); messages about other runs' tickets are left alone."""
    arrivals: dict[Owed, list[datetime]] = {}
    for message in (m for sink in sinks for m in sink.messages()):
        for ticket, key in notifications_in(message):
            if ticket not in tickets:
                continue
            cid, route, channel, number = key.split(":")
            row = stored.checkpoints.get(int(cid))
            if row is None or row["ticket"] != ticket:
                verdict.unexpected_messages += 1
                continue
            owed = (row["ticket"], row["key"], route, channel, number)
            arrivals.setdefault(owed, []).append(message["at"])
    return arrivals


# A storm digest lists each notification on a line: "- [P1] api/T-1: … · Notification: KEY".
_DIGEST_LINE = re.compile(
    r"^- \[[^\]]*\] [^/\s]+/(\S+): .* · (?:Notification|Notificación): (\S+)$"
)


def notifications_in(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(ticket, dedupe key) of each notification a message carries: one, or a digest's many."""
    key = message["key"] or ""
    if key.startswith("digest:"):
        body = str(message["json"].get("message", ""))
        return [(m.group(1), m.group(2)) for m in map(_DIGEST_LINE.match, body.splitlines()) if m]
    about = _TICKET.search(message["json"].get("title", ""))
    return [(about.group(1), key)] if about is not None and key else []


def excuse_resends(
    verdict: Verdict,
    worker_kills: list[datetime],
    window_s: float = 2.0,
    in_flight_s: float = SHORTEST_DOWN_S,
) -> None:
    """Count the re-sends a worker kill explains: the worker was killed after the first copy
    was sent and before the send was committed (the worker logs it after the commit), so the
    batch was delivered again. Without that log line, only a kill at most ``window_s`` after
    the first copy explains it.

    The sink stamps a copy when it has read it, which can be a little after the kill even
    though the killed worker sent it before: a copy arriving up to ``in_flight_s`` after a kill
    counts as sent before it. No worker sends that soon after a kill: the monkey pauses at
    least that long before a restart (unless the trial is ending), and a new worker takes
    seconds to start before it sends anything.

    That window is inherent (no HTTP send and database commit are atomic together, and a batch
    commits after all its sends); the message carries its dedupe key so the receiving end drops
    the repeat. Any other re-send stays unexplained and fails the run.
    """
    lag = timedelta(seconds=in_flight_s)

    def explained(item: Owed, first: datetime) -> bool:
        recorded = verdict.recorded_at.get(item)
        return any(
            first <= kill + lag
            and (kill < recorded if recorded else (kill - first).total_seconds() <= window_s)
            for kill in worker_kills
        )

    verdict.resent_after_kill = sum(
        len(later) for item, first, later in verdict.duplicates if explained(item, first)
    )


def settle(
    check: Any,
    *,
    seconds: float,
    quiet_s: float = 3.0,
    still_s: float = 600.0,
    report_every_s: float = 60.0,
) -> Verdict:
    """Poll ``check()`` until its verdict is ok and stays so for ``quiet_s``, or time runs out.

    A verdict still not ok and unchanged for ``still_s`` (longer than the longest delivery
    backoff) ends the wait early: nothing is moving any more. Meanwhile what is still wrong is
    printed every ``report_every_s`` (``pytest -s`` shows it).
    """
    began = time.monotonic()
    deadline = began + seconds
    verdict: Verdict = check()
    ok_since: float | None = None
    last, changed_at, reported_at = verdict.summary(), began, began
    while time.monotonic() < deadline:
        verdict = check()
        moment = time.monotonic()
        if verdict.ok:
            ok_since = ok_since or moment
            if moment - ok_since >= quiet_s:
                return verdict
        else:
            ok_since = None
            if (summary := verdict.summary()) != last:
                last, changed_at = summary, moment
            elif moment - changed_at >= still_s:
                return verdict
            if moment - reported_at >= report_every_s:
                reported_at = moment
                print(f"\nchaos: still waiting after {moment - began:.0f} s: {verdict.explain()}")
        time.sleep(1.0)
    return verdict


def now() -> datetime:
    return datetime.now(UTC)
