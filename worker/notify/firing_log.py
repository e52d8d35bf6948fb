"""What firing and delivery say: metrics, and a log line per checkpoint or notification, or
one per storm batch or digest (docs/operations.md lists the lines).

A line names the ticket, the checkpoint and the source; a channel appears by name and scheme,
never by URL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from shared import metrics
from worker.notify.outcome import About, Delivery, Outcome
from worker.notify.storm import StormSettings

log = structlog.get_logger("escalera.worker")


def report_fired(fired: Sequence[Any], now: datetime, storm: StormSettings) -> None:
    """Count the fired checkpoints (`worker.notify.facts.ABOUT` rows) and log a line each; a
    storm's batch (as many as make a storm of notifications, ``ESCALERA_STORM_THRESHOLD``) is
    one line naming every checkpoint and ticket in it, as its notifications become digests."""
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
