"""Policy files: what loads, and every refusal naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.durations import Duration, Unit
from shared.errors import PolicyError
from shared.names import fold
from shared.policy_file import load_policy, parse_policy
from tests.support import PRESETS, ROOT

GOOD = (ROOT / "tests" / "fixtures" / "contract-example.yaml").read_text()


def refusal(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    return str(caught.value).splitlines()


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_loads(path: Path) -> None:
    """The shipped presets are valid policy files."""
    assert load_policy(path).targets


def test_contract_example_loads_with_its_aliases_and_customers() -> None:
    """The example of CONTRACTS.md §2 loads as written."""
    policy = parse_policy(GOOD)
    assert policy.priority_named("CRITICAL") == "P1"
    assert policy.plan_for("acme", None) == "premium"
    assert policy.timezone_for("acme", None) == "America/Mexico_City"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "timezone: Europe/Madrid",
            "timezone: Europe/Madird",
            "policy.yaml:4: calendars.office.timezone: 'Europe/Madird' is not an IANA time zone",
        ),
        (
            'mon: ["08:00-17:00"]',
            'mon: ["17:00-08:00"]',
            "policy.yaml:6: calendars.office.hours.mon[0]: '17:00-08:00': a range must end after it starts",
        ),
        (
            "first_response: 1h",
            "first_response: 1 hour",
            "policy.yaml:35: targets[0].first_response: '1 hour' is not a duration: write 30m, 4h, 2d or 2bd",
        ),
        (
            "  premium: {calendar: always}",
            "  premium: {calendar: alwyas}",
            "policy.yaml:27: plans.premium.calendar: unknown calendar 'alwyas' (known: office, always, local)",
        ),
        (
            "    priority: P1",
            "    priority: P7",
            "policy.yaml:34: targets[0].priority: unknown priority 'P7' (known: P1, P2, P3, P4)",
        ),
        (
            "holiday_country: ES",
            "holiday_country: XX",
            "policy.yaml:12: calendars.office.holiday_country: 'XX' is not a country the holidays package knows",
        ),
        (
            "warn_at: [75, 90]",
            "warn_at: [75, 120]",
            "policy.yaml:41: targets[0].warn_at[1]: Input should be less than 100",
        ),
    ],
)
def test_a_bad_field_is_refused_with_file_line_and_field(old: str, new: str, expected: str) -> None:
    """Each mistake a policy author makes is pointed at precisely."""
    assert old in GOOD
    assert refusal(GOOD.replace(old, new))[0].startswith(expected)


def test_every_problem_is_listed_not_just_the_first() -> None:
    """Two mistakes, two lines: the author fixes both in one go."""
    text = GOOD.replace("timezone: Europe/Madrid", "timezone: Mars/Base", 1).replace(
        "resolution: 8h", "resolution: eight hours"
    )
    assert len(refusal(text)) == 2


def test_unknown_fields_are_refused() -> None:
    """A typo in a field name is an error, not a silently ignored setting."""
    lines = refusal(GOOD.replace("first_response: 1h", "first_respons: 1h"))
    assert lines[0].startswith(
        "policy.yaml:35: targets[0].first_respons: Extra inputs are not permitted"
    )


def test_two_targets_for_the_same_plan_and_priority_are_ambiguous() -> None:
    """A second target for standard/P1 is refused: which deadline would apply?"""
    duplicate = GOOD + "  - {plans: [standard], priority: urgent, first_response: 2h}\n"
    assert (
        "plan standard and priority P1 already have a target (targets[0])" in refusal(duplicate)[0]
    )


def test_an_alias_may_name_only_one_priority() -> None:
    """`critical` cannot mean both P1 and P2 (accents and case ignored)."""
    text = GOOD.replace("P2: {aliases: [high]}", "P2: {aliases: [high, Crítical]}")
    assert "priorities.P2.aliases[1]: 'Crítical' already names priority P1" in refusal(text)[0]


def test_broken_yaml_names_the_line() -> None:
    """A YAML syntax error is reported with its line."""
    assert refusal("name: x\ncalendars: [unclosed\n")[0].startswith("policy.yaml:3: not valid YAML")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A policy path that does not exist says so."""
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "unit", "seconds"),
    [
        ("30m", Unit.MINUTES, 1800),
        ("4h", Unit.HOURS, 14400),
        ("1.5h", Unit.HOURS, 5400),
        ("2d", Unit.DAYS, 172800),
        ("2bd", Unit.BUSINESS_DAYS, 2 * 9 * 3600),
    ],
)
def test_durations(text: str, unit: Unit, seconds: int) -> None:
    """m, h and d are fixed; bd is as long as the calendar's business day (here 9 h)."""
    duration = Duration.parse(text)
    assert (duration.unit, duration.seconds_on(9 * 3600)) == (unit, seconds)


@pytest.mark.parametrize("text", ["0h", "4", "h", "1.5s", "-2h", "0.00001m"])
def test_bad_durations(text: str) -> None:
    """Zero, unitless, unknown-unit and sub-second durations are refused."""
    with pytest.raises(ValueError):
        Duration.parse(text)


def test_names_fold_case_accents_and_spaces() -> None:
    """`Crítico`, `CRITICO` and ` critico ` are the same priority name."""
    assert fold("Crítico") == fold("CRITICO") == fold(" critico ") == "critico"
    assert fold("Impacto  Crítico") == "impacto_critico"


def test_a_key_written_twice_is_refused_with_both_lines() -> None:
    """YAML would silently keep the second `targets:`; the loader refuses and points at both."""
    text = GOOD + "targets:\n  - {priority: P2, first_response: 2h}\n"
    (problem,) = refusal(text)
    assert problem.startswith("policy.yaml:42: targets: appears twice (first at line 32)")
