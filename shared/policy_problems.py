"""Recurring incidents handed to problem management: the policy's ``problems``.

Tickets that share a problem key (a tag with a prefix, ``problem_vpn``, or the same value of a
context field) ``threshold`` times within ``window`` are told, once, to the route ``route``
with the list of tickets; when the problem ticket (``ticket_type: problem`` with the same key)
is resolved, that route is told which customers reported it. `worker.events.problem_rule`
decides, `worker.events.problem_check` records and routes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from shared.durations import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _wall_clock(value: Duration) -> Duration:
    if value.fixed_seconds() is None:
        raise ValueError(
            f"{value}: a problem's window is wall-clock time (tickets arrive at any hour): "
            "write 30m, 4h or 2d"
        )
    return value


Window = Annotated[
    Duration,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*(\d+(?:\.\d+)?)\s*(m|h|d)\s*$",
            "description": "wall-clock time from a run's first ticket: 4h, 24h, 7d",
            "examples": ["24h", "7d"],
        }
    ),
]


class ProblemKey(_Strict):
    """What makes tickets the same problem: one of a tag prefix or a context field."""

    # every tag starting with it is a key: `problem_` makes `problem_vpn` one
    tag_prefix: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    field: Literal["subject", "group", "channel"] | None = None

    @model_validator(mode="after")
    def _one(self) -> ProblemKey:
        if (self.tag_prefix is None) == (self.field is None):
            raise ValueError("a problem key is one of `tag_prefix` or `field`")
        return self


class ProblemsSpec(_Strict):
    key: ProblemKey
    threshold: Annotated[int, Field(ge=2, le=1000)] = 3
    window: Window
    route: Annotated[str, Field(min_length=1, max_length=64)]
