"""What firing and delivery say: metrics, and a log line per checkpoint or notification, or
one per storm batch or digest (docs/operations.md lists the lines).

A line names the ticket, the checkpoint and the source; a channel appears by name and scheme,
never by URL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from shared import metrics
from worker.notify.catch_up import Silence
from worker.notify.outcome import About, Delivery, Outcome
from worker.notify.storm import StormSettings

log = structlog.get_logger("escalera.worker")


def report_fired(
    fired: Sequence[Any],
    now: datetime,
    storm: StormSettings,
    not_paged: Mapping[int, Silence] | None = None,
) -> None:
    """Count the fired checkpoints (`worker.notify.facts.ABOUT` rows) and log a line each; a
    storm's batch (as many as make a storm of notifications, ``ESCALERA_STORM_THRESHOLD``) is
    one line naming every checkpoint and ticket in it, as its notifications become digests.

    A checkpoint that paged nobody (``not_paged``: caught up, too old) says why on its line; a
    storm's line counts them by reason."""
    quiet = not_paged or {}
    metrics.checkpoints_fired(((row.kind, row.due_at) for row in fired), now)
    if not fired or (storm.enabled and len(fired) >= storm.threshold):
        if fired:
            lateness = [(now - row.due_at).total_seconds() for row in fired]
            log.info(
                "checkpoint_storm_fired",
                checkpoints=[int(row.id) for row in fired],
                keys=[row.key for row in fired],
                tickets=[f"{row.source}/{row.ticket_id}" for row in fired],
                kinds=dict(Counter(row.kind for row in fired)),
                lateness_s_min=min(lateness),
                lateness_s_max=max(lateness),
                not_paged=dict(Counter(silence.reason.value for silence in quiet.values())),
            )
        return
    for row in fired:
        log.info(
            "checkpoint_fired",
            checkpoint=int(row.id),
            key=row.key,
            kind=row.kind,
            due_at=row.due_at.isoformat(),
            source=row.source,
            ticket_id=row.ticket_id,
            lateness_s=(now - row.due_at).total_seconds(),
            **_why_not_paged(quiet.get(int(row.id))),
        )


def _why_not_paged(silence: Silence | None) -> dict[str, str]:
    """A line's ``not_paged`` (caught_up, too_old) and ``caught_up_by``; none if it paged."""
    if silence is None:
        return {}
    return {"not_paged": silence.reason.value} | (
        {"caught_up_by": silence.by} if silence.by else {}
    )


def report_deliveries(outcomes: dict[int, Outcome]) -> None:
    """A metric and a log line per message tried: ticket, checkpoint, channel and scheme, never
    a URL. A digest is one line that names every notification, checkpoint and ticket in it."""
    messages: dict[tuple[str, Delivery], list[tuple[int, About]]] = defaultdict(list)
    for nid, outcome in outcomes.items():
        if outcome.about is not None:  # else not tried here (another batch reports it)
            messages[(outcome.about.message, outcome.delivery)].append((nid, outcome.about))
    for (key, delivery), tried in messages.items():
        first = tried[0][1]
        metrics.notification_delivered(first.scheme, delivery.value, len(tried))
        if len(tried) == 1:
            nid, about = tried[0]
            log.info(
                "notification_delivery",
                notification_id=nid,
                checkpoint=about.checkpoint,
                source=about.source,
                ticket_id=about.ticket_id,
                channel=about.channel,
                scheme=about.scheme,
                outcome=delivery.value,
            )
            continue
        log.info(
            "digest_delivery",
            digest=key,
            notifications=len(tried),
            notification_ids=[nid for nid, _ in tried],
            checkpoints=[about.checkpoint for _, about in tried],
            tickets=[f"{about.source}/{about.ticket_id}" for _, about in tried],
            channel=first.channel,
            scheme=first.scheme,
            outcome=delivery.value,
        )
