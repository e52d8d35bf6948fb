"""Posting the demo morning to a running ingest API, each event at its time, one line for each."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.events import Event
from worker.demo.morning import MORNING, Step, morning_events

POST_TIMEOUT_S = 10


def feed_line(event: Event, step: Step) -> str:
    """The terminal's line for one posted event: when, which ticket, what, for whom, why it
    matters."""
    details = [event.type.value]
    if event.priority:
        details.append(event.priority)
    if event.customer:
        details.append(event.customer)
    team = " ".join(part for part in (event.group, event.ticket_type) if part)
    who = ": ".join(part for part in (team, event.assignee) if part)
    if who:
        details.append(who)  # "Technical incident: marco@desk.example"
    if event.tier:
        details.append(f"tier {event.tier}")
    if step.ago >= timedelta(minutes=1):
        details.append(f"{_ago(step.ago)} ago")
    line = f"{datetime.now().astimezone():%H:%M:%S}  << {event.source}/{event.ticket_id}: "
    line += " · ".join(details)
    return f"{line} ({step.note})" if step.note else line


def _ago(span: timedelta) -> str:
    hours, minutes = divmod(int(span.total_seconds()) // 60, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def run_feed(
    api: str,
    token: str,
    stop: threading.Event,
    say: Callable[[str], None],
    *,
    tag: str = "",
    steps: tuple[Step, ...] = MORNING,
) -> None:
    """Post every step at its time until the morning is over or ``stop`` is set."""
    start = datetime.now(UTC)
    for posted, event, step in morning_events(start, steps, tag):
        if stop.wait(max(0.0, (posted - datetime.now(UTC)).total_seconds())):
            return
        try:
            _post(api, token, event)
        except OSError as exc:  # the API went away (stopping): say so once and end the feed
            say(f"demo feed stopped: {api} did not take {event.ticket_id} ({exc})")
            return
        say(feed_line(event, step))
    say("demo feed: the morning is over; pages repeat until acknowledged. Ctrl-C stops.")


def _post(api: str, token: str, event: Event) -> None:
    request = urllib.request.Request(
        f"{api}/v1/events",
        data=json.dumps(event.model_dump(mode="json", exclude_none=True)).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as response:
        response.read()
