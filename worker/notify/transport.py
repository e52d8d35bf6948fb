"""Handing a message to a channel's targets through Apprise: one result per target, no URL shown.

At-least-once: a read time-out may hide a delivery that happened, so every message carries its
dedupe key (in the text, and as ``X-Escalera-Dedupe-Key`` on JSON webhooks) for the receiving
end to drop repeats. A URL holds credentials: a result or a log line names only its scheme.
A batch's targets are sent on a bounded thread pool; a lone page is sent without a hand-off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Protocol, TypeVar
from urllib.parse import quote

import apprise

from worker.notify import console  # noqa: F401 - registers the console:// channel with Apprise
from worker.notify.messages import Message

SEND_THREADS = 8  # Apprise calls in flight at once per worker process
DEDUPE_HEADER = "X-Escalera-Dedupe-Key"

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


class Sender(Protocol):
    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        """Send to each URL; per URL, None if delivered, else the reason it failed."""


class AppriseSender:
    """Each target on its own Apprise object, so each result is known (Apprise 2.x results)."""

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        return [self._one(url, message, dedupe_key) for url in urls]

    def _one(self, url: str, message: Message, dedupe_key: str) -> str | None:
        target = apprise.Apprise()
        if not target.add(_with_dedupe_header(url, dedupe_key)):
            return f"not an Apprise URL ({scheme(url)}://…)"
        # plain text: e-mail keeps its line breaks (left unsaid, Apprise would send the text as
        # HTML, and every line of the message would run into one)
        result = target.notify(
            title=message.title, body=message.body, body_format=apprise.NotifyFormat.TEXT
        )
        if result.status == apprise.AppriseResultStatus.SUCCESS:
            return None
        return f"{scheme(url)}: {result.status.name.lower()}"


def warm_apprise() -> None:
    """Load Apprise's plugins now (0.7 s of CPU, seconds on a busy machine): in the worker's
    parent before it forks, so no child pays for it on the first page it sends."""
    apprise.Apprise().add("json://127.0.0.1/warm-up")


def send_one(sender: Sender, url: str, message: Message, dedupe_key: str) -> str | None:
    """One target's result: None if it accepted the message, else why not. A plugin's bug fails
    this target, not the whole batch, and is told by its type: its text could hold the URL."""
    try:
        return sender.send([url], message, dedupe_key)[0]
    except Exception as exc:
        return f"{scheme(url)}: {type(exc).__name__}"


def send_all(one: Callable[[_Job], _Result], jobs: Sequence[_Job]) -> list[_Result]:
    """``one`` of each job, in order: on the sending threads, or right here for a lone one."""
    return list(_pool().map(one, jobs)) if len(jobs) > 1 else [one(job) for job in jobs]


def scheme(url: str) -> str:
    """What may be logged of a channel URL: its scheme only, never host, path or key."""
    return url.split("://", 1)[0] if "://" in url else "?"


def schemes(urls: Sequence[str]) -> str:
    """What may be logged of a channel: its URLs' schemes (``json+mailto``), or ``none``."""
    return "+".join(sorted({scheme(url) for url in urls})) or "none"


def _with_dedupe_header(url: str, key: str) -> str:
    if scheme(url) not in ("json", "jsons"):
        return url
    return f"{url}{'&' if '?' in url else '?'}+{DEDUPE_HEADER}={quote(key)}"


@cache
def _pool() -> ThreadPoolExecutor:
    """The process's sending threads (made on first use: after Celery's fork, not before)."""
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="escalera-send")
