"""deploy/systemd units: parse as unit files, start real ``escalera`` commands in order."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from tests.deploy.files import DEPLOY, assert_escalera_command

UNITS = DEPLOY / "systemd"
EXPECTED = {
    "escalera-migrate.service": "db",
    "escalera-ingest.service": "ingest",
    "escalera-worker.service": "worker",
    "escalera-beat.service": "beat",
}


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(), source=str(path))
    return parser


def test_the_four_units_are_there() -> None:
    assert sorted(p.name for p in UNITS.glob("escalera-[!s]*.service")) == sorted(EXPECTED)


def test_a_timer_pulls_each_portals_missed_changes_every_hour_with_an_overlap() -> None:
    """``escalera-sync@zendesk.timer`` starts ``escalera sync zendesk --since 70m`` hourly (at
    most five minutes late): each run reads back past where the one before started."""
    service = _unit(UNITS / "escalera-sync@.service")
    assert service.sections() == ["Unit", "Service"]  # started by its timer, not at boot
    program, *argv = shlex.split(service["Service"]["ExecStart"].replace("%i", "zendesk"))
    assert program == "/opt/escalera/.venv/bin/escalera"
    assert argv == ["sync", "zendesk", "--since", "70m"]
    assert_escalera_command(argv, "escalera-sync@.service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["EnvironmentFile"] == "/etc/escalera/escalera.env"
    timer = _unit(UNITS / "escalera-sync@.timer")
    assert timer["Timer"]["OnCalendar"] == "hourly"
    assert timer["Timer"]["RandomizedDelaySec"] == "5min"  # 60 + 5 < 70 minutes read back
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_unit_parses_and_runs_a_real_cli_command(name: str) -> None:
    unit = _unit(UNITS / name)
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    program, *argv = shlex.split(unit["Service"]["ExecStart"])
    assert program == "/opt/escalera/.venv/bin/escalera"
    assert argv[0] == EXPECTED[name]
    assert_escalera_command(argv, name)
    assert unit["Service"]["EnvironmentFile"] == "/etc/escalera/escalera.env"  # secrets, 0600
    assert unit["Service"]["User"] == "escalera"


@pytest.mark.parametrize(
    "name", ["escalera-ingest.service", "escalera-worker.service", "escalera-beat.service"]
)
def test_services_start_after_migrations_and_restart_on_failure(name: str) -> None:
    unit = _unit(UNITS / name)
    assert "escalera-migrate.service" in unit["Unit"]["After"].split()
    assert unit["Service"]["Restart"] in ("on-failure", "always")
    assert unit["Service"]["PrivateTmp"] == "yes"  # the metrics folders live and die there


def test_migrations_run_once_and_stay_done() -> None:
    service = _unit(UNITS / "escalera-migrate.service")["Service"]
    assert (service["Type"], service["RemainAfterExit"]) == ("oneshot", "yes")
