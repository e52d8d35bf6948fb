"""Ticket fields made safe to copy into a message: one line, no control characters. Pure.

A ticket id, a customer or a priority comes from a portal or an API client. Copied as it is into
a page, a newline in it would start a line of the attacker's choosing (a fake "Acknowledge:"
link), and a terminal escape or a right-to-left override would change what the reader sees.
`one_line` keeps such a field readable and on its own line: a line break shows as ``␤``, a tab
as a space, any other control character as ``?``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

LINE_BREAK = "␤"
_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# C0 and C1 controls, and the bidirectional overrides and isolates (U+202A-E, U+2066-9)
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """``text`` on one line: breaks as ``␤``, a tab as a space, other controls as ``?``."""
    if text.isprintable():  # nearly always: a storm's digest copies thousands of fields
        return text
    return _CONTROLS.sub("?", _BREAKS.sub(LINE_BREAK, text).replace("\t", " "))


def path_part(text: str) -> str:
    """``text`` as one URL path segment: every reserved character percent-encoded."""
    return quote(text, safe="")
