"""Every Prometheus metric Escalera exports, defined once; call sites are one line each.

Labels are bounded: a configured source (any other is counted as ``other``, `source_label`), an
outcome, a checkpoint kind, a channel's URL *scheme* (never the URL: it holds webhook keys).
Processes that fork or spawn (uvicorn workers, Celery prefork) write their samples to
``PROMETHEUS_MULTIPROC_DIR``; `shared.metrics_export` reads them back at scrape time
(docs/operations.md says which process is scraped where).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from shared.config import settings
from shared.events import Event

EVENTS_INGESTED = Counter(
    "escalera_events_ingested", "Events accepted by ingest and put on the queue", ["source"]
)
REQUESTS_REFUSED = Counter(
    "escalera_ingest_refused",
    "Ingest requests refused whole (nothing queued), by source and reason",
    ["source", "reason"],
)
EVENTS_APPLIED = Counter(
    "escalera_events_applied", "Events the worker applied, by outcome", ["source", "outcome"]
)
CHECKPOINTS_ARMED = Counter(
    "escalera_checkpoints_armed", "Checkpoints newly planned (armed) by the worker", ["kind"]
)
CHECKPOINTS_FIRED = Counter("escalera_checkpoints_fired", "Checkpoints fired", ["kind"])
FIRING_LATENESS = Histogram(
    "escalera_checkpoint_firing_lateness_seconds",
    "From a checkpoint's due instant to its firing (beat's hand-off, the fire queue, the task)",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
NOTIFICATIONS = Counter(
    "escalera_notifications",
    "Delivery attempts by channel scheme: sent; failed (will retry); dead (fallback told)",
    ["scheme", "outcome"],
)
TIMERS_CLAIMED = Counter("escalera_timers_claimed", "Due timers beat handed to the fire queues")
LEASES_REAPED = Counter(
    "escalera_timer_leases_reaped", "Claims whose fire task never finished, handed out again"
)
CHECKPOINT_CLAIMS = Counter(
    "escalera_checkpoint_claims",
    "Checkpoints beat claimed for the fire task, a re-claim after a reaped lease again (over "
    "escalera_checkpoints_fired_total: claims per checkpoint)",
)
CHECKPOINTS_SKIPPED = Counter(
    "escalera_checkpoints_skipped",
    "Claimed checkpoints the fire task did not fire: gone (met or cancelled after the claim), "
    "fired (already: a repeated claim), later (moved later: claimed again when due)",
    ["reason"],
)
BEAT_HELD = Counter(
    "escalera_beat_held_ticks",
    "Beat passes that claimed and reaped nothing: the fire queue was full (backpressure)",
)
BEAT_TICK = Gauge(
    "escalera_beat_last_tick_timestamp_seconds",
    "When beat last claimed due timers (alert if it stops moving)",
    multiprocess_mode="mostrecent",
)


class _Planned(Protocol):
    @property
    def kind(self) -> str: ...


# HTTP status of a refusal -> its reason label (the detail text is for people, not labels)
_REASONS = {
    400: "malformed",
    401: "unauthorized",
    404: "not_found",
    413: "too_large",
    415: "media_type",
    422: "invalid",
    403: "forbidden",
    503: "unavailable",
}

OTHER_SOURCE = "other"  # the label of every source not configured
_labelled: frozenset[str] | None = None  # None: the process settings' `metric_sources()`


def label_sources(sources: Iterable[str] | None) -> None:
    """The sources counted under their own label (None: those the process settings name)."""
    global _labelled  # noqa: PLW0603 - one set per process, as the metrics themselves
    _labelled = None if sources is None else frozenset(sources)


def source_label(source: str) -> str:
    """``source`` if configured, else ``other``: a request cannot mint label values."""
    global _labelled  # noqa: PLW0603 - read once from the settings, then kept
    if _labelled is None:
        _labelled = settings().metric_sources()
    return source if source in _labelled else OTHER_SOURCE


def events_ingested(events: Iterable[Event]) -> None:
    for event in events:
        EVENTS_INGESTED.labels(source_label(event.source)).inc()


def request_refused(source: str, status: int, reason: str | None = None) -> None:
    """``source`` is bounded by the caller: ``api``, a portal with a webhook, or ``unknown``;
    ``reason`` (a fixed word, e.g. ``queue_full``) when the status alone says too little."""
    REQUESTS_REFUSED.labels(source, reason or _REASONS.get(status, str(status))).inc()


def event_applied(source: str, outcome: str, armed: Iterable[_Planned]) -> None:
    """One applied event and the checkpoints it newly armed (moved ones are not counted)."""
    EVENTS_APPLIED.labels(source_label(source), outcome).inc()
    for checkpoint in armed:
        CHECKPOINTS_ARMED.labels(checkpoint.kind).inc()


def checkpoints_fired(fired: Iterable[tuple[str, datetime]], fired_at: datetime) -> None:
    """A fired batch, as (kind, due instant) pairs: one count per kind, a lateness each."""
    by_kind: dict[str, list[datetime]] = {}
    for kind, due_at in fired:
        by_kind.setdefault(kind, []).append(due_at)
    for kind, dues in by_kind.items():
        CHECKPOINTS_FIRED.labels(kind).inc(len(dues))
        lateness = FIRING_LATENESS.labels(kind)
        for due_at in dues:
            lateness.observe(max(0.0, (fired_at - due_at).total_seconds()))


def checkpoints_skipped(*, gone: int, fired: int, later: int) -> None:
    """A fire task's claimed checkpoints that it did not fire, by why."""
    for reason, count in (("gone", gone), ("fired", fired), ("later", later)):
        if count:
            CHECKPOINTS_SKIPPED.labels(reason).inc(count)


def notification_delivered(scheme: str, delivery: str, count: int = 1) -> None:
    """``delivery`` is the deliver step's outcome: sent, retry (counted as failed) or dead."""
    NOTIFICATIONS.labels(scheme, "failed" if delivery == "retry" else delivery).inc(count)


def beat_ticked(claimed: int, reaped: int, now: datetime, *, checkpoints: int, held: bool) -> None:
    """One beat pass: ``claimed`` in every lane, ``checkpoints`` of them for the fire task."""
    TIMERS_CLAIMED.inc(claimed)
    LEASES_REAPED.inc(reaped)
    CHECKPOINT_CLAIMS.inc(checkpoints)
    if held:
        BEAT_HELD.inc()
    BEAT_TICK.set(now.astimezone(UTC).timestamp())


# Policies: which ones each process runs (the hash), and every folder refused.
POLICY_LOADS = Counter(
    "escalera_policy_loads",
    "Policy folder loads that changed or refused something: reloaded; refused (the policies in "
    "force stay: the last good ones)",
    ["outcome"],
)
POLICIES_INFO = Gauge(
    "escalera_policies_info",
    "1 for the policies this process runs (hash of the folder's files; origin: folder or "
    "last_good), 0 for ones it ran before",
    ["hash", "origin"],
    multiprocess_mode="liveall",  # one sample per process: a process that disagrees shows
)


def policy_load(outcome: str) -> None:
    POLICY_LOADS.labels(outcome).inc()


def policies_in_force(hash_: str, origin: str, previous: tuple[str, str] | None = None) -> None:
    """This process now runs ``(hash_, origin)``; ``previous`` is what it ran until now."""
    if previous is not None and previous != (hash_, origin):
        POLICIES_INFO.labels(*previous).set(0)
    POLICIES_INFO.labels(hash_, origin).set(1)
