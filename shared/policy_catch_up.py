"""How a policy pages checkpoints found due together: ``catch_up`` and ``max_catch_up``.

A ticket's events can arrive after several of a clock's checkpoints are already due (an import,
a portal retrying after an outage, ``escalera sync`` of missed webhooks, a worker that was down).
``catch_up: latest`` (the default) pages only the most advanced of them; ``all`` pages every
one. ``max_catch_up`` (wall-clock time) is how old a checkpoint may be and still page: older
ones fire without a page and still count in the reports. `worker.notify.catch_up` applies both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from shared.durations import Duration


class CatchUp(StrEnum):
    """Which of a clock's checkpoints due at once page."""

    LATEST = "latest"  # the most advanced one; the older ones are caught up by it
    ALL = "all"  # every one, as if each had fired on time


def _wall_clock_age(value: Duration) -> Duration:
    """A checkpoint's age is wall-clock time since it fell due: a business day has no fixed
    length outside a calendar, and a worker that was down was down on the wall clock."""
    if value.fixed_seconds() is None:
        raise ValueError(
            f"{value}: the time since a checkpoint fell due is wall-clock time, "
            "and a business day has no fixed length: write 30m, 4h or 2d"
        )
    return value


# An editor marks a ``bd`` here, as ``policy check`` refuses it (`_wall_clock_age`).
MaxCatchUp = Annotated[
    Duration,
    AfterValidator(_wall_clock_age),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d)\s*$",
            "description": "wall-clock time since a checkpoint fell due: 30m, 4h, 2d",
            "examples": ["1h", "4h", "1d"],
        }
    ),
]
