"""Hypothesis strategies for hostile requests: JSON of any shape, times of every kind, mutations.

A hostile body is mostly a plausible one with something wrong in it (a field of the wrong type, a
key too many or missing, a time without offset or in year 9999), so that the fuzzing reaches past
the first check into validation, the adapters and the policy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from shared.events import EventType, Level, Status

NOW = datetime.now(UTC).replace(microsecond=0)
OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=14), "-14")]

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and Infinity too: Python's json reads them
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def iso(at: datetime) -> str:
    return at.isoformat()


recent = st.integers(min_value=-86_400 * 30, max_value=0).map(lambda s: NOW + timedelta(seconds=s))
valid_times = recent.map(iso)
hostile_times = st.one_of(
    recent.map(lambda at: at.replace(tzinfo=None).isoformat()),  # naive
    recent.map(lambda at: at.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.datetimes(timezones=st.sampled_from(OFFSETS)).map(iso),  # year 1 to 9999
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00-14:00",
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59+14:00",
            "1970-01-01T00:00:00Z",
            "2026-02-30T09:00:00Z",
            "2026-03-02T25:00:00Z",
            "2026-03-02T09:00:00+25:00",
            "",
            "now",
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(),
    st.text(max_size=30),
)
times = valid_times | hostile_times
ids = st.text(min_size=1, max_size=40) | st.integers(min_value=0, max_value=10**12).map(str)
priorities = (
    st.sampled_from(["P1", "P2", "P3", "Crítico"])
    | st.sampled_from(["Gravísimo", "", "p1 "])
    | st.text(max_size=20)
)
zones = st.sampled_from(["America/Mexico_City", "Europe/Madrid", "UTC", "Nowhere/Land", "../etc"])


def mutated(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """``base`` as generated, or with keys dropped, added, or given any JSON value."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        value = dict(draw(base))
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))):
            action = draw(st.sampled_from(["drop", "add", "retype"]))
            if action == "drop" and value:
                value.pop(draw(st.sampled_from(sorted(value))))
            elif action == "add":
                value[draw(st.text(max_size=12))] = draw(json_values)
            elif value:
                value[draw(st.sampled_from(sorted(value)))] = draw(json_values)
        return value

    return mutate()


canonical_event = mutated(
    st.fixed_dictionaries(
        {
            "event_id": ids,
            "ticket_id": ids,
            "type": st.sampled_from([t.value for t in EventType]) | st.text(max_size=15),
            "occurred_at": times,
            "priority": priorities,
        },
        optional={
            "source": st.sampled_from(["api", "zendesk", ""]) | st.text(max_size=10),
            "urgency": st.sampled_from([v.value for v in Level]) | st.text(max_size=8),
            "impact": st.sampled_from([v.value for v in Level]),
            "status": st.sampled_from([v.value for v in Status]) | st.text(max_size=8),
            "customer": st.text(max_size=300),
            "plan": st.sampled_from(["standard", "premium", "nope"]),
            "customer_timezone": zones,
            "requester": st.text(max_size=20),
            "public": st.booleans(),
            "automatic": st.booleans(),
            "tier": st.integers(min_value=-3, max_value=12),
        },
    )
)


def dumps(value: Any) -> bytes:
    """JSON as a careless sender writes it (NaN and Infinity included, non-ASCII as is)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def deeply_nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


raw_bodies = st.one_of(
    st.binary(max_size=200),  # invalid UTF-8 and worse
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=5_000).map(deeply_nested),
    json_values.map(dumps).map(lambda b: b[: len(b) // 2]),  # truncated
    st.just(b'{"event_id": "\xff\xfe"}'),
    st.just(b"\xef\xbb\xbf{}"),  # a UTF-8 byte-order mark
    st.just(b'{"event_id": "\\ud800"}'),  # a lone surrogate escaped
)
