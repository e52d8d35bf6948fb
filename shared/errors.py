"""Escalera's error tree. Every error a user can cause names what to fix.

EscaleraError
├── PolicyError        a policy file does not validate (file, line, field)
├── EventError         a canonical event does not validate (line in a .jsonl file, field)
├── IntegrationsError  the portals' integration settings file does not validate
└── EvaluationError    a ticket's events cannot be evaluated under a policy
    └── TicketNotCreated   no ``created`` event has arrived for the ticket yet
"""

from __future__ import annotations

from dataclasses import dataclass


class EscaleraError(Exception):
    """Base of every error Escalera raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where, which field, and what."""

    line: int | None
    field: str
    message: str

    def render(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line is not None else path
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class FileError(EscaleraError):
    """A file is refused: every problem with its file, line and field."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(p.render(path) for p in problems))


class PolicyError(FileError):
    """A policy file is refused: every problem with its file, line and field."""


class EventError(FileError):
    """An events file is refused: every bad line with its number and field."""


class IntegrationsError(FileError):
    """The integration settings file is refused: every problem with its line and field."""


class EvaluationError(EscaleraError):
    """A ticket's events cannot be evaluated under the policy."""


class TicketNotCreated(EvaluationError):
    """The ticket has events but no ``created`` event yet."""
