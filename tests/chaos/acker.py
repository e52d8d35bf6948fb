"""A person on call: acknowledges the `chain_acked` lives' pages from the link in the message.

It watches the sinks and, for each `chain_acked` ticket, presses the acknowledgement button of
the chain's second message (the phone's first ring) as soon as it arrives, retrying while the
ingest process is down or the database answers 503, as a person would press again. The judge
reads the acknowledgement from the database, never from here.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.chaos.services import Sink
from tests.chaos.verify import notifications_in

ACKED_KIND = "chain_acked"
ACKED_MESSAGE = "phone:1"  # the chain's second message: `phone`, message number 1
NAME = "chaos-acker"
GIVE_UP_S = 120.0
_LINK = re.compile(r"(https?://\S+/v1/acks\?\S+)")


def links(body: str) -> dict[str, str]:
    """Each acknowledgement link in a message (one, or a digest's many), by the page it names."""
    found = {}
    for link in _LINK.findall(body):
        key = parse_qs(urlsplit(link).query).get("key", [""])[0]
        found[key] = link
    return found


class Acker:
    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.acknowledged: dict[str, datetime] = {}  # dedupe key -> when the button answered
        self.refused: dict[str, int] = {}  # dedupe key -> status, for one never acknowledged
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Acker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=GIVE_UP_S + 10)

    def _run(self) -> None:
        seen = [0] * len(self.sinks)  # messages of each sink already looked at
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(0.2):
                for i, sink in enumerate(self.sinks):
                    messages = sink.messages()
                    for message in messages[seen[i] :]:
                        for key, link in self._to_acknowledge(message).items():
                            self._press(client, key, link)
                    seen[i] = len(messages)

    def _to_acknowledge(self, message: dict[str, object]) -> dict[str, str]:
        body = str((message.get("json") or {}).get("message", ""))  # type: ignore[union-attr]
        found = links(body)
        return {
            key: found[key]
            for ticket, key in notifications_in(message)  # type: ignore[arg-type]
            if ticket.endswith(f"-{ACKED_KIND}")
            and key.endswith(f":chain:{ACKED_MESSAGE}")
            and key in found
            and key not in self.acknowledged
            and key not in self.refused
        }

    def _press(self, client: httpx.Client, key: str, link: str) -> None:
        deadline = time.monotonic() + GIVE_UP_S
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                answer = client.post(link, data={"name": NAME})
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                self.acknowledged[key] = datetime.now(UTC)
                return
            if answer is not None and answer.status_code < 500:
                self.refused[key] = answer.status_code
                return
            time.sleep(0.2)
