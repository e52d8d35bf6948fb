"""Sending the lives' events at their instants, as a portal would: retried until answered 202.

A portal retries a webhook that failed (the ingest process killed, a connection refused), so
the replayer does too; only a 202 counts as accepted, and only accepted events are owed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.chaos.lives import Scheduled
from tests.chaos.system import TOKEN

GIVE_UP_S = 180.0


class Replayer:
    def __init__(self, base: str, schedule: list[Scheduled], concurrency: int = 32) -> None:
        self.base, self.schedule, self.concurrency = base, schedule, concurrency
        self.accepted: list[dict[str, Any]] = []
        self.accepted_at: list[datetime] = []
        self.failed_attempts = 0
        self.given_up: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Replayer:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the replayer did not finish")

    async def _run(self) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        headers = {"authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=5) as client:
            tasks = []
            for item in self.schedule:
                delay = (item.at - datetime.now(UTC)).total_seconds()
                if delay > 0:
                    await asyncio.sleep(delay)
                await limit.acquire()
                tasks.append(asyncio.create_task(self._send(client, item.event, limit)))
            await asyncio.gather(*tasks)

    async def _send(
        self, client: httpx.AsyncClient, event: dict[str, Any], limit: asyncio.Semaphore
    ) -> None:
        try:
            deadline = time.monotonic() + GIVE_UP_S
            while time.monotonic() < deadline:
                try:
                    response = await client.post("/v1/events", json=event)
                    if response.status_code == 202:
                        self.accepted.append(event)
                        self.accepted_at.append(datetime.now(UTC))
                        return
                except httpx.TransportError:
                    pass
                self.failed_attempts += 1
                await asyncio.sleep(0.2)
            self.given_up.append(event)
        finally:
            limit.release()
