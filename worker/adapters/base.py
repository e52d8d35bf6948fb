"""What every source adapter is: a portal's webhook in, canonical events out.

An adapter never touches the network, the queue or the database: it verifies a request's
credentials and maps its JSON to `shared.events.Event`s, refusing with a reason what it cannot
map (an unknown event type, an unmapped status) rather than dropping it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.errors import EscaleraError
from shared.events import Event


@dataclass(frozen=True)
class WebhookRequest:
    """A request as received: the raw body (signatures are over these bytes) and headers."""

    body: bytes
    headers: Mapping[str, str]  # lower-cased names
    received_at: datetime


class RejectedRequest(EscaleraError):
    """A request refused whole; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, reason: str, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class Unauthorized(RejectedRequest):
    """Missing, wrong, stale or replayed credentials: 401, nothing is stored."""

    status = 401


class Unmappable(RejectedRequest):
    """Valid JSON that cannot become canonical events (unknown type, unmapped status): 422."""

    status = 422


class Adapter(Protocol):
    """One portal."""

    source: str

    def verify(self, request: WebhookRequest, secret: str) -> None:
        """Raise `Unauthorized` unless the request carries valid credentials for ``secret``."""

    def to_events(self, payload: Any, request: WebhookRequest) -> list[Event]:
        """Canonical events for a verified request's parsed JSON, or raise `Unmappable`."""
