"""How many requests the fuzzers send: the full 11,000 under ``make chaos``, a few hundred else.

``ESCALERA_CHAOS_FULL=1`` (set by ``make chaos``, shared with tests/chaos) runs the full counts;
without it each fuzzer runs about a twentieth, so tests/hostile stays well under a minute.
The full counts add up to 11,000 requests: `FULL_SPLIT`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FULL = os.environ.get("ESCALERA_CHAOS_FULL") == "1"

# requests per fuzzer in the full run: an earlier issue's 10,000, and 1,000 nothing-lost batches
FULL_SPLIT = {
    "events_single": 1500,
    "events_batch": 1000,
    "events_raw": 1000,
    "zendesk": 1200,
    "freshdesk": 1200,
    "jira": 1200,
    "tickets": 500,
    "openapi": 2400,
    "nothing_lost": 1000,  # batches through ingest and the worker, on each database
}
assert sum(FULL_SPLIT.values()) == 11_000


def fuzz_settings(name: str) -> settings:
    """Hypothesis settings for the fuzzer ``name``: its share of the requests, no deadline."""
    full = FULL_SPLIT[name]
    return settings(
        max_examples=full if FULL else max(25, full // 20),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the app is stateless between requests
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
