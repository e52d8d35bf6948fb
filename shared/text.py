"""What text the stores and the messages can hold: control characters found and made harmless.

PostgreSQL's ``text`` and ``jsonb`` cannot hold a NUL; no database holds a lone surrogate; a
newline copied from a ticket id into a page forges a line of its own. Pure functions.
"""

from __future__ import annotations

import unicodedata
from typing import Any

REPLACEMENT = "\ufffd"


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs")  # controls (C0, DEL, C1) and surrogates


def first_control(text: str) -> int | None:
    """The index of the first control character or surrogate in ``text``, or None."""
    return next((i for i, char in enumerate(text) if _unsafe(char)), None)


def storable(text: str, limit: int | None = None) -> str:
    """``text`` with every control character and surrogate replaced by U+FFFD, cut at ``limit``."""
    safe = "".join(REPLACEMENT if _unsafe(char) else char for char in text)
    return safe if limit is None else safe[:limit]


def storable_json(value: Any) -> Any:
    """A JSON value every string of which (keys too) is `storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value
