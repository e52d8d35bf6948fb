"""How a warning by time ("30 minutes before the deadline") is named in its checkpoint's key.

A percentage warning's key ends in its percent (``first_response:warning:75``); a warning by time
ends in the working time left, in hours, minutes and seconds (``first_response:warning:30m``,
``update#2:warning:1h30m``). The same amount always gives the same key however the policy writes
it (``30m``, ``0.5h``), and a percent is a bare number, so the two kinds never share a key. The
key is the warning's whole identity in the database: a message reads the time left back from it.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = (("h", 3600), ("m", 60), ("s", 1))
# ``:warning:`` then at least one of 2h, 30m, 15s in that order, ending the key
_LEFT = re.compile(r":warning:(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def warning_key(clock_key: str, left: timedelta) -> str:
    """The key of a clock's warning by time: ``first_response`` and 30 min give
    ``first_response:warning:30m``."""
    seconds, parts = int(left.total_seconds()), []
    for unit, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return f"{clock_key}:warning:{''.join(parts)}"


def left_in_key(key: str) -> timedelta | None:
    """The working time left a warning by time was planned at, from its key; None for any
    other checkpoint (a percentage warning, a breach, an allowance warning)."""
    match = _LEFT.search(key)
    if match is None:
        return None
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)
