"""The ``console://`` channel: a notification printed in a terminal, for trying Escalera locally.

An Apprise plugin registered when this module is imported (`worker.notify.transport` does),
so a console notification goes through the same routing, rendering, dedupe and retry as any
real channel. ``console://NAME`` labels the lines with NAME (``escalera up`` uses the policy's
channel name). The text goes to the file descriptor in ``ESCALERA_CONSOLE_FD`` (``escalera up``
hands its terminal to the worker that way, away from Celery's own output), else to stdout.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Any

from apprise.decorators import notify

SCHEME = "console"
CONSOLE_FD_ENV = "ESCALERA_CONSOLE_FD"
_INDENT = " " * 11


def console_text(channel: str, title: str, body: str, at: datetime) -> str:
    """One notification as terminal lines: time, channel and title, then the body indented."""
    head = f"{at:%H:%M:%S}  >> {channel}: {title}" if channel else f"{at:%H:%M:%S}  >> {title}"
    return "\n".join([head, *(f"{_INDENT}{line}" for line in body.splitlines())]) + "\n"


def write_console(text: str) -> None:
    """One write per notification, so lines from several worker processes do not interleave."""
    fd = os.environ.get(CONSOLE_FD_ENV)
    if fd:
        os.write(int(fd), text.encode())
        return
    stream = sys.__stdout__ or sys.stdout
    stream.write(text)
    stream.flush()


@notify(on=SCHEME, name="Escalera console")  # type: ignore[untyped-decorator, no-untyped-call]
def _send(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *_: Any, **__: Any
) -> bool:
    try:
        write_console(
            console_text(str(meta.get("host") or ""), title, body, datetime.now().astimezone())
        )
    except OSError:
        return False  # the terminal went away: a failed delivery, retried like any other
    return True
