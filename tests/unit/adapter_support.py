"""What the portal adapter tests share: recorded payloads, and running an adapter on them.

A plain module, not a conftest: each ``test_adapter_*`` file imports what it uses and keeps what
is its portal's own (the secret, how a delivery is signed, when it arrives).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.events import Event
from worker.adapters.base import Adapter, Unmappable, WebhookRequest

WEBHOOK_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"


class Fixtures:
    """One portal's recorded payloads: ``tests/fixtures/webhooks/<portal>/<name>.json``."""

    def __init__(self, portal: str) -> None:
        self.folder = WEBHOOK_FIXTURES / portal

    def raw(self, name: str) -> bytes:
        """The payload's bytes as recorded (for signatures over the exact body)."""
        return (self.folder / f"{name}.json").read_bytes()

    def load(self, name: str) -> dict[str, Any]:
        """The payload parsed, a fresh copy on every call (tests edit it freely)."""
        loaded: dict[str, Any] = json.loads(self.raw(name))
        return loaded


def json_body(payload: Any) -> bytes:
    """``payload`` as the JSON body of a delivery."""
    return json.dumps(payload).encode()


@dataclass(frozen=True)
class Runner:
    """An adapter run on payloads delivered the way its portal delivers them.

    ``deliver`` builds the request for a payload; keyword options a test passes to `events`
    (headers, a delay) go to it.
    """

    adapter: Adapter
    deliver: Callable[..., WebhookRequest]

    def events(self, payload: Any, adapter: Adapter | None = None, **options: Any) -> list[Event]:
        """What ``adapter`` (by default the runner's) makes of ``payload``."""
        chosen = self.adapter if adapter is None else adapter
        return chosen.to_events(payload, self.deliver(payload, **options))

    def one(self, payload: Any, adapter: Adapter | None = None) -> Event:
        """The single event of ``payload``."""
        [event] = self.events(payload, adapter)
        return event

    def refused(self, payload: Any, adapter: Adapter | None = None) -> Unmappable:
        """The `Unmappable` raised for ``payload``, checked to answer 422."""
        with pytest.raises(Unmappable) as caught:
            self.events(payload, adapter)
        assert caught.value.status == 422
        return caught.value
