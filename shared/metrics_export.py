"""What a scrape returns: this process's metrics (or its process group's), plus queue depth.

A process group that forks or spawns (``escalera ingest --workers N``, the Celery prefork
worker) writes samples to files in ``PROMETHEUS_MULTIPROC_DIR``, one per process, and a scrape
of any of its processes sums them. A lone process (beat, ``ingest --workers 1``) is read from
its own registry. Queue depth is read from Redis at scrape time, never cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis

from shared.config import Settings
from shared.redis_keys import PRIORITY_SUFFIXES, celery_prefix, queue_lists

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
QUEUE_DEPTH = "escalera_queue_depth"


class QueueDepth:
    """``escalera_queue_depth{queue}``: messages waiting in each Celery queue (LLEN)."""

    def __init__(self, redis: Redis, key_prefix: str, queues: Sequence[str]) -> None:
        self._redis, self._prefix, self._queues = redis, key_prefix, queues

    @classmethod
    def from_settings(cls, config: Settings) -> QueueDepth:
        redis = Redis.from_url(config.redis_url, socket_timeout=2)
        prefix = celery_prefix(config.redis_prefix)  # shared.celery_app's global_keyprefix
        return cls(redis, prefix, [config.events_queue, config.fire_queue])

    def depths(self) -> dict[str, int]:
        pipe = self._redis.pipeline(transaction=False)
        for queue in self._queues:
            for key in queue_lists(self._prefix, queue):
                pipe.llen(key)
        lengths = pipe.execute()
        per_queue = len(PRIORITY_SUFFIXES)
        return {
            queue: sum(lengths[i * per_queue : (i + 1) * per_queue])
            for i, queue in enumerate(self._queues)
        }

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "escalera_queue_depth",
            "Messages waiting in each queue, read at scrape",
            labels=["queue"],
        )
        for queue, depth in self.depths().items():
            family.add_metric([queue], depth)
        yield family


class _Forward:
    """The process's own default registry, inside a scrape registry of its own."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry(queue_depth: QueueDepth | None = None) -> CollectorRegistry:
    """The registry a scrape renders: the process group's samples, and the queues if given."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(_Forward())
    if queue_depth is not None:
        registry.register(queue_depth)
    return registry


def serve_metrics(
    port: int, registry: CollectorRegistry, host: str = "0.0.0.0"
) -> Callable[[], None]:
    """``/metrics`` on ``port`` from a daemon thread (worker, beat); returns how to stop it."""
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join()

    return stop
