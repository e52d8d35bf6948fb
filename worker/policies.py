"""The policies a deployment runs: one file per source, all validated when the process starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scheduler.calendars import CalendarBook
from shared.config import Settings
from shared.errors import PolicyError, Problem
from shared.policy import Policy
from shared.policy_file import load_policy


@dataclass(frozen=True)
class LoadedPolicy:
    name: str  # the file's stem, e.g. "athento"
    policy: Policy
    calendars: CalendarBook


class PolicyBook:
    """Which policy applies to events from which source."""

    def __init__(
        self, policies: dict[str, LoadedPolicy], by_source: dict[str, str], default: str
    ) -> None:
        missing = sorted({*by_source.values(), default} - set(policies))
        if missing:
            known = ", ".join(sorted(policies)) or "none"
            raise PolicyError(
                "policy settings",
                [
                    Problem(None, "", f"no policy file named {name!r} (found: {known})")
                    for name in missing
                ],
            )
        self._policies, self._by_source, self._default = policies, by_source, default

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyBook:
        """Load and validate every policy file in the folder; a bad one raises `PolicyError`."""
        return cls(
            load_folder(settings.policy_dir), settings.source_policies, settings.default_policy
        )

    def for_source(self, source: str) -> LoadedPolicy:
        return self._policies[self._by_source.get(source, self._default)]

    def named(self, name: str) -> LoadedPolicy:
        return self._policies[name]


def load_folder(folder: Path) -> dict[str, LoadedPolicy]:
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise PolicyError(
            str(folder), [Problem(None, "", "no policy files (*.yaml) in this folder")]
        )
    loaded = {}
    for path in files:
        policy = load_policy(path)
        loaded[path.stem] = LoadedPolicy(path.stem, policy, CalendarBook(policy))
    return loaded
