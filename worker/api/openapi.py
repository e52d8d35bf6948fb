"""What the OpenAPI document says the write endpoints take (they read their bodies raw).

The routes read raw bytes (signatures are over them), so FastAPI cannot infer their bodies: these
schemas document them for /docs and for schemathesis (tests/hostile), which generates requests
from them.
"""

from __future__ import annotations

from typing import Any

from shared.events import Event


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with every ``#/$defs/X`` reference replaced by its definition."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def _event_schema() -> dict[str, Any]:
    schema = Event.model_json_schema()
    inlined: dict[str, Any] = _inlined(schema, schema.get("$defs", {}))
    return inlined


def events_body(max_batch: int) -> dict[str, Any]:
    """``POST /v1/events``: one canonical event, or an array of up to ``max_batch``."""
    event = _event_schema()
    many = {"type": "array", "items": event, "minItems": 1, "maxItems": max_batch}
    return _json_body({"oneOf": [event, many]}, "canonical events (CONTRACTS.md §1)")


def webhook_body() -> dict[str, Any]:
    """``POST /v1/webhooks/{source}``: the portal's own JSON (see each adapter's docstring)."""
    return _json_body({"type": "object"}, "the portal's webhook payload, as it sends it")


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }
