"""Handing a message to a channel's targets through Apprise: one result per target, no URL shown.

At-least-once: a read time-out may hide a delivery that happened, so every message carries its
dedupe key (in the text, and as ``X-Escalera-Dedupe-Key`` on JSON webhooks) for the receiving
end to drop repeats. A URL holds credentials: a result or a log line names only its scheme.
A batch's targets are sent on a bounded thread pool; a lone page is sent without a hand-off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from functools import cache, lru_cache
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, unquote

import apprise
from apprise.plugins import url_to_dict
from apprise.utils.parse import parse_urls

from worker.notify import console  # noqa: F401 - registers the console:// channel with Apprise
from worker.notify.messages import Message

SEND_THREADS = 8  # Apprise calls in flight at once per worker process
DEDUPE_HEADER = "X-Escalera-Dedupe-Key"
PARSED_URLS = 512  # channel URLs whose parse is kept: settings and the directory hold fewer

_HEADER_SCHEMES = ("json", "jsons")
_thread = threading.local()

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


class Sender(Protocol):
    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        """Send to each URL; per URL, None if delivered, else the reason it failed."""


class AppriseSender:
    """Each target on its own plugin instance, so each result is known (Apprise 2.x results)."""

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        return [self._one(url, message, dedupe_key) for url in urls]

    def _one(self, url: str, message: Message, dedupe_key: str) -> str | None:
        target = _thread_apprise()
        try:
            if not _load(target, url, dedupe_key):
                return f"not an Apprise URL ({scheme(url)}://…)"
            # plain text: e-mail keeps its line breaks (left unsaid, Apprise would send the text
            # as HTML, and every line of the message would run into one)
            result = target.notify(
                title=message.title, body=message.body, body_format=apprise.NotifyFormat.TEXT
            )
        finally:
            # the thread's next send (even after a plugin raised) reaches its own target only
            target.clear()
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
    if scheme(url) not in _HEADER_SCHEMES:
        return url
    return f"{url}{'&' if '?' in url else '?'}+{DEDUPE_HEADER}={quote(key)}"


class _Parse(Enum):
    FAILED = "Apprise cannot read the URL"
    WHOLE = "not one plain URL: Apprise is handed the whole string, as it always was"


def _load(target: apprise.Apprise, url: str, key: str) -> bool:
    """Put a fresh plugin instance for ``url`` on ``target``; False if Apprise cannot read it.

    Fresh each send: an instance remembers when it last sent and would sleep to keep to its
    service's rate (mailto 5.5 s, slack 1.2 s); a page must not wait for the one before it.
    Made from the URL's cached parse: parsing it each send, and masking it for Apprise's log,
    with a new Apprise object each time, cost a quarter of a webhook send's CPU.
    """
    parsed = _parsed(url)
    if parsed is _Parse.FAILED:
        return False
    if parsed is _Parse.WHOLE:
        return target.add(_with_dedupe_header(url, key))
    arguments = _fresh(parsed)  # Apprise and the plugin may write to what they are given
    if scheme(url) in _HEADER_SCHEMES:
        # what Apprise made of the ``+`` parameter _with_dedupe_header appends: the value
        # unquoted, stripped, then unquoted again by the json plugin
        arguments["headers"][DEDUPE_HEADER] = unquote(key.strip())
    try:
        # raising, not suppressed: Apprise would log a plugin's refusal with the parse itself,
        # password and all (it masks URL strings, not dicts)
        service = apprise.Apprise.instantiate(
            arguments, asset=target.asset, suppress_exceptions=False
        )
    except Exception:
        return False  # what Apprise's add makes of a URL its plugin refuses
    return service is not None and target.add(service)


@lru_cache(maxsize=PARSED_URLS)
def _parsed(url: str) -> dict[str, Any] | _Parse:
    """``url`` as Apprise's ``add`` would parse it: a plugin's arguments, once per URL."""
    if "#" in url or parse_urls(url) != [url]:  # type: ignore[no-untyped-call]
        return _Parse.WHOLE  # several URLs, a fragment, spaces: Apprise's own reading stands
    secure_logging = apprise.AppriseAsset().secure_logging
    parsed: dict[str, Any] | None = url_to_dict(  # type: ignore[no-untyped-call]
        url, secure_logging=secure_logging
    )
    if parsed is not None:
        return parsed
    # the header parameter can mend a webhook URL (``json://h/x?`` parses only with it)
    return _Parse.WHOLE if scheme(url) in _HEADER_SCHEMES else _Parse.FAILED


def _fresh(value: Any) -> Any:
    """A copy of a parse whose dicts and lists are new, so no send's header reaches another's."""
    if isinstance(value, dict):
        return {name: _fresh(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_fresh(item) for item in value]
    if isinstance(value, set):
        return {_fresh(item) for item in value}
    return value


def _thread_apprise() -> apprise.Apprise:
    """The sending thread's Apprise object: making one per send reads locale files each time."""
    target: apprise.Apprise | None = getattr(_thread, "apprise", None)
    if target is None:
        target = _thread.apprise = apprise.Apprise()
    return target


@cache
def _pool() -> ThreadPoolExecutor:
    """The process's sending threads (made on first use: after Celery's fork, not before)."""
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="escalera-send")
