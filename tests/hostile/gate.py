"""Every request of the hostile suite goes through a `Gate`, which checks what must hold for all.

- no answer is a 5xx;
- a refusal (any 4xx) is ``application/problem+json`` with a ``detail``, and nothing reached the
  events queue on Redis (its length did not move);
- a 202 put exactly the events it counts on the queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from fastapi.testclient import TestClient

TALLY: Counter[int] = Counter()  # every answer of the run, by status


@dataclass
class Gate:
    client: TestClient
    redis: redis.Redis
    queue_key: str  # the Redis list the ingest service LPUSHes events onto

    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        before = self.redis.llen(self.queue_key)
        response = self.client.request(
            method, path, content=content, headers=dict(headers or {}), params=params
        )
        queued = self.redis.llen(self.queue_key) - before
        TALLY[response.status_code] += 1
        where = f"{method} {path} -> {response.status_code} {response.text[:500]}"
        assert response.status_code < 500, where
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", where
            assert response.json()["detail"], where
            assert queued == 0, f"{where}: a refused request queued {queued} events"
        elif response.status_code == 202:
            assert queued == _accepted(response), f"{where}: {queued} events on the queue"
        else:
            assert queued == 0, f"{where}: queued {queued} events"
        if self.redis.llen(self.queue_key) > 5000:
            self.redis.delete(self.queue_key)  # keep the shared Redis small; counts are deltas
        return response


def _accepted(response: httpx.Response) -> int:
    body: Any = response.json()
    return int(body["accepted"])
