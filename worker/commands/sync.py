"""``escalera sync SOURCE --since TIME``: recover the changes a portal's webhooks did not deliver.

The portal's section of the integration settings (``ESCALERA_INTEGRATIONS``) gives its address
and the names of the variables holding the API credentials; `worker.sync.<source>` builds the
portal's puller from them. The run (`worker.sync.run`) pages through the changes made in
``[since, until)``, drops what the worker already stored, checks the rest against the source's
policy and pushes them onto the events queue as ingest does. docs/sync.md says when to run it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from importlib import import_module
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from scheduler.timeline import check_event
from shared.config import WEBHOOK_PORTALS, Settings, settings
from shared.errors import EscaleraError
from shared.events import Event
from shared.integrations import Portal, load_integrations
from worker.events.message import encode
from worker.portals.http import PortalError
from worker.runtime import Runtime, runtime
from worker.sync.base import Puller
from worker.sync.known import stored_events
from worker.sync.run import PageDone, Sync, SyncError, Totals

# How a rate limit is waited out; tests replace it so that nothing really sleeps.
sleep: Callable[[float], None] = time.sleep

EXIT_FAILED = 1


class PullerModule(Protocol):
    def make_puller(
        self,
        section: Any,
        environ: Mapping[str, str],
        *,
        sleep: Callable[[float], None] = ...,
    ) -> Puller: ...


class Waits:
    """The puller's sleep: waits as asked, and adds up how long, for the summary."""

    def __init__(self, pause: Callable[[float], None]) -> None:
        self.pause = pause
        self.seconds = 0.0

    def __call__(self, seconds: float) -> None:
        self.seconds += seconds
        self.pause(seconds)


def sync_command(args: argparse.Namespace) -> int:
    source: str = args.source
    config = settings()
    module = puller_module(source)
    section = _section(config, source)
    waits = Waits(sleep)
    puller = module.make_puller(section, os.environ, sleep=waits)
    rt = runtime()
    since, until = _period(rt, source, args.since, args.until)
    sync = Sync(
        puller,
        stored_for=lambda src, tickets: _stored(rt, src, tickets),
        check=lambda event: check_event(rt.policies.for_source(event.source).policy, event),
        enqueue=None if args.dry_run else _queue(rt),
    )
    print(f"{source}: changes from {since.isoformat()} until {until.isoformat()}")
    try:
        for page in sync.run(since, until):
            _print_page(page, dry_run=args.dry_run)
    except (PortalError, SyncError, RedisError) as exc:
        _print_totals(source, sync.totals, waits.seconds, dry_run=args.dry_run)
        print(f"escalera: sync stopped: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print_totals(source, sync.totals, waits.seconds, dry_run=args.dry_run)
    return 0


def puller_module(source: str) -> PullerModule:
    """``worker.sync.<source>``, imported only now (a portal's module loads only its own)."""
    if source not in WEBHOOK_PORTALS:
        raise EscaleraError(f"unknown source {source!r}: sync reads {', '.join(WEBHOOK_PORTALS)}")
    name = f"worker.sync.{source}"
    try:
        module: PullerModule = import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise EscaleraError(f"sync from {source} is not available in this version") from exc
    return module


def _section(config: Settings, source: str) -> Portal:
    if config.integrations is None:
        raise EscaleraError(
            f"ESCALERA_INTEGRATIONS is not set: sync needs the {source} section of the "
            "integration settings (base_url, api_user_env, api_token_env; docs/sync.md)"
        )
    section = load_integrations(config.integrations).portal(source)
    if section is None:
        raise EscaleraError(
            f"{config.integrations} has no {source}: section: sync needs its base_url, "
            "api_user_env and api_token_env (docs/sync.md)"
        )
    return section


def _period(
    rt: Runtime, source: str, since: timedelta | date | datetime, until: date | datetime | None
) -> tuple[datetime, datetime]:
    """``[since, until)`` as instants; a date is its midnight in the source policy's zone, a
    span is that long before now (a timer's ``--since 70m``)."""
    zone = ZoneInfo(rt.policies.for_source(source).policy.default_timezone)
    now = datetime.now(UTC)
    start = now - since if isinstance(since, timedelta) else _instant(since, zone)
    end = now if until is None else _instant(until, zone)
    if start >= end:
        raise EscaleraError(
            f"--since {start.isoformat()} is not before --until {end.isoformat()}: nothing to read"
        )
    return start, end


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, clock_time(0), tzinfo=zone)


def _stored(rt: Runtime, source: str, tickets: Sequence[str]) -> dict[str, list[Event]]:
    with rt.sessions() as session:
        return stored_events(session, source, tickets)


def _queue(rt: Runtime) -> Callable[[Sequence[Event]], None]:
    """A page's events pushed onto the events queue in one LPUSH, as ingest's publisher does."""
    from shared.celery_app import app, queue_key  # noqa: PLC0415 - Celery only when queuing

    queue = rt.settings.events_queue
    key = queue_key(rt.settings, queue)

    def push(events: Sequence[Event]) -> None:
        rt.redis.lpush(key, *[encode(app, queue, event) for event in events])

    return push


def _print_page(page: PageDone, *, dry_run: bool) -> None:
    verb = "to queue" if dry_run else "queued"
    print(
        f"page {page.number}: {page.tickets} tickets, {page.found} events: "
        f"{page.stored} already stored, {len(page.queued)} {verb}, {len(page.refused)} refused"
    )
    for refusal in page.refused:
        event = refusal.event
        print(f"  refused {event.source}/{event.ticket_id} {event.type.value}: {refusal.reason}")


def _print_totals(source: str, totals: Totals, waited_s: float, *, dry_run: bool) -> None:
    verb = "to queue (dry run: nothing queued)" if dry_run else "queued"
    print(
        f"{source}: {totals.pages} pages, {totals.tickets} tickets read, {totals.found} events "
        f"found, {totals.stored} already stored, {totals.queued} {verb}, {totals.refused} "
        f"refused, {waited_s:g} s waited for rate limits"
    )
