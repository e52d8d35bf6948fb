"""``escalera up --policy``: a preset by name or a policy file, refused before anything starts
when it cannot run; a file from elsewhere runs beside the folder's policies, and its edits are
seen as the folder's are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.errors import EscaleraError, PolicyError
from tests.support import PRESETS
from worker.commands.policy_choice import PolicyChoice, choose_policy, is_path, link_folder
from worker.policies.book import load_folder
from worker.policies.watch import fingerprint

MULTI_TEAM = (PRESETS / "multi-team.yaml").read_text()


@pytest.mark.parametrize(
    ("choice", "path"),
    [
        ("multi-team", False),
        ("soporte_completo.v2", False),
        ("./mine.yaml", True),
        ("mine.YML", True),
        ("policies/mine", True),
        ("~/mine.yaml", True),
    ],
)
def test_a_path_has_a_slash_or_a_yaml_suffix_a_name_neither(choice: str, path: bool) -> None:
    assert is_path(choice) is path


def test_a_name_is_a_policy_of_the_folder() -> None:
    assert choose_policy("multi-team", PRESETS) == PolicyChoice(
        "multi-team", PRESETS / "multi-team.yaml", in_folder=True
    )


def test_a_path_into_the_folder_needs_no_folder_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PRESETS.parent)
    assert choose_policy("policies/multi-team.yaml", PRESETS) == PolicyChoice(
        "multi-team", PRESETS / "multi-team.yaml", in_folder=True
    )


def test_an_unknown_name_lists_the_folders_policies() -> None:
    with pytest.raises(EscaleraError) as refused:
        choose_policy("nosuch", PRESETS)
    assert str(refused.value) == (
        f"--policy nosuch: no policy named 'nosuch' in {PRESETS} (found: athento, multi-team, "
        "serviceaide, soporte-completo, wati-business-plus, zmanda); or give a policy file's "
        "path, e.g. --policy ./my-desk.yaml"
    )


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EscaleraError, match=r"^--policy \S+/gone\.yaml: no such file$"):
        choose_policy(str(tmp_path / "gone.yaml"), PRESETS)


def test_a_file_that_does_not_validate_is_refused_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "desk.yaml"
    broken.write_text(MULTI_TEAM.replace("first_response: 15m", "first_response: soon"))
    with pytest.raises(PolicyError) as refused:
        choose_policy(str(broken), PRESETS)
    assert str(broken) in str(refused.value)
    assert "first_response" in str(refused.value)


def test_a_file_from_elsewhere_runs_beside_the_folders_policies(tmp_path: Path) -> None:
    """Linked in under its own name, in place of the folder's policy of that name; the other
    policies stay, so a source whose setting names one keeps it."""
    mine = tmp_path / "desk" / "multi-team.yaml"
    mine.parent.mkdir()
    mine.write_text(MULTI_TEAM.replace("first_response: 15m", "first_response: 10m"))
    choice = choose_policy(str(mine), PRESETS)
    assert choice == PolicyChoice("multi-team", mine, in_folder=False)

    folder = link_folder(choice, PRESETS, tmp_path / "up" / "policies")
    policies = load_folder(folder)
    assert sorted(policies) == sorted(path.stem for path in PRESETS.glob("*.yaml"))
    urgent = next(t for t in policies["multi-team"].policy.targets if t.name == "incident-urgent")
    assert urgent.first_response is not None and urgent.first_response.seconds_on(0) == 600

    before = fingerprint(folder)
    mine.write_text(MULTI_TEAM)
    os.utime(mine, ns=(0, 0))  # a change a poll sees even within the clock's resolution
    assert fingerprint(folder) != before


def test_a_folder_of_links_is_made_afresh(tmp_path: Path) -> None:
    """What an earlier run linked (another file chosen then) does not linger."""
    into = tmp_path / "policies"
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(MULTI_TEAM)
        link_folder(choose_policy(str(tmp_path / f"{name}.yaml"), PRESETS), PRESETS, into)
    linked = sorted(path.name for path in into.iterdir())
    assert "two.yaml" in linked
    assert "one.yaml" not in linked
