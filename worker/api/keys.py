"""Who may do what: API keys, each with a name and scopes.

A scope is what a key may do: ``write`` events (for the sources it names), ``read`` tickets,
reports and metrics, ``ack`` pages. `authorize` returns the caller's `Key` or raises
`Unauthorized` (no or wrong credentials, 401) or `Forbidden` (a valid key without the scope, 403).

Keys come from ``ESCALERA_API_KEYS``; each legacy ``ESCALERA_API_TOKENS`` entry is a key named
``api-token-1``, ``api-token-2``, ... with every scope, writing source ``api`` only. A request
signed with ``ESCALERA_API_HMAC_SECRET`` is the key `HMAC_KEY_NAME`, which may write the sources
of ``ESCALERA_API_HMAC_SOURCES`` (``api``). Tokens are compared in constant time, every one of
them; a key's name is shown in logs and in the timeline, its token never.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from shared.config import Settings
from shared.events import Event
from worker.adapters.base import RejectedRequest, Unauthorized, Unmappable
from worker.adapters.signatures import AUTHORIZATION, bearer_index

HMAC_KEY_NAME = "api-hmac"
API_SOURCE = "api"
NAMESPACE = "api:"  # the event ids of /v1/events for a source other than `api` start with this
MAX_EVENT_ID_CHARS = 256  # shared.events.Event.event_id and the events.event_id column


class Scope(StrEnum):
    WRITE = "write"
    READ = "read"
    ACK = "ack"


class Forbidden(RejectedRequest):
    """Valid credentials that may not do this (a scope, a source): 403."""

    status = 403


@dataclass(frozen=True)
class Key:
    name: str  # shown in logs and in the timeline (who acknowledged); never the secret
    scopes: frozenset[Scope]
    sources: frozenset[str]  # the sources a write-scoped key may write as


def keys(settings: Settings) -> list[tuple[Key, str]]:
    """Every configured key with its token: the legacy tokens first, then ``ESCALERA_API_KEYS``.
    Callers only read the list."""
    return _keyring(settings)[0]


# The last settings' keys and their tokens (every request asks): (settings, its api_tokens,
# its api_keys, keys, tokens), kept until ``settings`` or its key lists are other objects.
_built: tuple[Settings, object, object, list[tuple[Key, str]], list[str]] | None = None


def _keyring(settings: Settings) -> tuple[list[tuple[Key, str]], list[str]]:
    """`keys` and their tokens in the same order, built once per settings."""
    global _built  # noqa: PLW0603 - one per process, as the settings
    built = _built
    if (
        built is None
        or built[0] is not settings
        or built[1] is not settings.api_tokens
        or built[2] is not settings.api_keys
    ):
        found = _keys(settings)
        built = _built = (
            settings,
            settings.api_tokens,
            settings.api_keys,
            found,
            [t for _k, t in found],
        )
    return built[3], built[4]


def _keys(settings: Settings) -> list[tuple[Key, str]]:
    legacy = [
        (Key(f"api-token-{n}", frozenset(Scope), frozenset({API_SOURCE})), token)
        for n, token in enumerate((t.get_secret_value() for t in settings.api_tokens), 1)
    ]
    named = [
        (
            Key(key.name, frozenset(Scope(s) for s in key.scopes), frozenset(key.sources)),
            key.token.get_secret_value(),
        )
        for key in settings.api_keys
    ]
    return legacy + named


def hmac_key(settings: Settings) -> Key:
    """Who a request signed with ``ESCALERA_API_HMAC_SECRET`` is: a writer, nothing more."""
    return Key(HMAC_KEY_NAME, frozenset({Scope.WRITE}), frozenset(settings.api_hmac_sources))


def authorize(settings: Settings, headers: Mapping[str, str], scope: Scope) -> Key:
    """The key presented in ``Authorization: Bearer``, if it has ``scope``."""
    configured, tokens = _keyring(settings)
    if not configured:
        raise Unauthorized(
            "no API keys are configured (ESCALERA_API_KEYS or ESCALERA_API_TOKENS)",
            field=AUTHORIZATION,
        )
    key = configured[bearer_index(headers, tokens)][0]
    if scope not in key.scopes:
        raise Forbidden(f"the key {key.name!r} has no `{scope}` scope", field=AUTHORIZATION)
    return key


def requires(settings: Settings, scope: Scope) -> Callable[[Request], Key]:
    """A FastAPI dependency: the request's key, which must have ``scope``."""

    def dependency(request: Request) -> Key:
        return authorize(settings, request.headers, scope)

    return dependency


def check_sources(key: Key, events: Sequence[Event], *, indexed: bool) -> None:
    """Refuse (403, naming ``[i].source``) an event of a source ``key`` may not write."""
    for index, event in enumerate(events):
        if event.source not in key.sources:
            field = f"[{index}].source" if indexed else "source"
            raise Forbidden(
                f"{field}: the key {key.name!r} may not write source {event.source!r}",
                field=field,
            )


def check_namespace(events: Sequence[Event], *, indexed: bool) -> None:
    """Refuse (422) an id of a source other than ``api`` with no room for the ``api:`` prefix."""
    room = MAX_EVENT_ID_CHARS - len(NAMESPACE)
    for index, event in enumerate(events):
        field = f"[{index}].event_id" if indexed else "event_id"
        if event.source != API_SOURCE and len(event.event_id) > room:
            raise Unmappable(
                f"{field}: at most {room} characters for source {event.source!r} "
                f"(stored as {NAMESPACE}<event_id>)",
                field=field,
            )


def check_not_namespaced(events: Sequence[Event]) -> None:
    """Refuse (422) a webhook's event whose id starts ``api:``: that prefix is the API's own."""
    for event in events:
        if event.event_id.startswith(NAMESPACE):
            raise Unmappable(
                f"event ids starting {NAMESPACE!r} are reserved for /v1/events", field="event_id"
            )


def namespaced(events: Sequence[Event]) -> list[Event]:
    """Events posted to /v1/events, with the id of each not of source ``api`` prefixed ``api:``.

    A portal's webhook and the API then never share an event id: an API event cannot make the
    genuine webhook that follows it a duplicate (``api`` has one ingress: its ids stay as sent).
    """
    return [
        event
        if event.source == API_SOURCE
        else event.model_copy(update={"event_id": NAMESPACE + event.event_id})
        for event in events
    ]
