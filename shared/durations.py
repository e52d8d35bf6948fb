"""Durations as policy files write them: ``30m``, ``4h``, ``2d`` and ``2bd``.

``m`` and ``h`` are working time on the target's calendar; ``d`` is wall-clock days (``2d`` is 48
hours whether or not the desk is open); ``bd`` is business days, each as long as the calendar's
``business_day``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema


class Unit(StrEnum):
    MINUTES = "m"
    HOURS = "h"
    DAYS = "d"
    BUSINESS_DAYS = "bd"


_SECONDS = {Unit.MINUTES: 60, Unit.HOURS: 3600, Unit.DAYS: 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bd|m|h|d)\s*$")


@dataclass(frozen=True)
class Duration:
    """An amount with its unit, resolved to seconds against a calendar by the SLA core."""

    amount: Decimal
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a duration: write 30m, 4h, 2d or 2bd")
        try:
            amount = Decimal(match.group(1))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
            raise ValueError(f"{text!r} is not a duration") from exc
        duration = cls(amount, Unit(match.group(2)))
        if duration.unit is not Unit.BUSINESS_DAYS and duration.fixed_seconds() is None:
            raise ValueError(f"{text!r} is not a whole number of seconds")
        if amount <= 0:
            raise ValueError(f"{text!r}: a duration must be longer than zero")
        return duration

    @property
    def is_wall_clock(self) -> bool:
        """``d`` durations run on the wall clock, not on the calendar's hours."""
        return self.unit is Unit.DAYS

    def fixed_seconds(self) -> int | None:
        """Seconds for m/h/d; None for ``bd``, whose length depends on the calendar."""
        if self.unit is Unit.BUSINESS_DAYS:
            return None
        seconds = self.amount * _SECONDS[self.unit]
        return int(seconds) if seconds == seconds.to_integral_value() else None

    def seconds_on(self, business_day_seconds: int) -> int:
        """Seconds of (working or wall) time this duration stands for on a calendar."""
        fixed = self.fixed_seconds()
        if fixed is not None:
            return fixed
        return int(self.amount * business_day_seconds)

    def __str__(self) -> str:
        return f"{self.amount.normalize():f}{self.unit.value}"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: type[Any], _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> Duration:
            if isinstance(value, Duration):
                return value
            if not isinstance(value, str):
                raise PydanticCustomError(
                    "duration",
                    "expected a duration such as 30m, 4h, 2d or 2bd, got {value}",
                    {"value": repr(value)},
                )
            try:
                return cls.parse(value)
            except ValueError as exc:
                raise PydanticCustomError("duration", str(exc)) from exc

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """How a policy file writes it, for an editor to check as you type (the pattern `parse`
        reads; whether it is a whole number of seconds is left to ``policy check``)."""
        return {
            "type": "string",
            "pattern": _PATTERN.pattern,
            "description": "30m, 4h: working time; 2d: wall-clock days; 2bd: business days",
            "examples": ["30m", "4h", "2d", "2bd"],
        }
