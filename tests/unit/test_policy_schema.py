"""The JSON Schemas editors check policy and integration files against as they are typed.

The copies kept in deploy/ are what the presets' modelines point at: they must be exactly what
``escalera policy schema`` and ``escalera integrations schema`` print, must accept every policy
shipped or used as an example, and must flag the mistakes a person makes while typing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from shared.errors import PolicyError
from shared.policy_file import load_policy, parse_policy
from tests.support import PRESETS, ROOT
from worker.cli import main

DEPLOY = ROOT / "deploy"
POLICY_SCHEMA = DEPLOY / "policy.schema.json"
MODELINE = "# yaml-language-server: $schema=../policy.schema.json"
CONTRACT_EXAMPLE = ROOT / "tests" / "fixtures" / "contract-example.yaml"
EXAMPLES = [
    *sorted(PRESETS.glob("*.yaml")),
    CONTRACT_EXAMPLE,
    ROOT / "tests" / "chaos" / "chaos-policy.yaml",
    ROOT / "bench" / "soak" / "desk-policy.yaml",
]


def as_an_editor_reads(text: str) -> Any:
    """The YAML as a language server hands it to the schema: YAML 1.2 has no dates, so
    ``2026-12-25`` is the string it is written as."""
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def problems(schema: Path, text: str) -> list[str]:
    validator = jsonschema_rs.validator_for(json.loads(schema.read_text()))
    return [error.message for error in validator.iter_errors(as_an_editor_reads(text))]


@pytest.mark.parametrize(
    ("command", "copy"),
    [
        ("policy schema", POLICY_SCHEMA),
        ("integrations schema", DEPLOY / "integrations.schema.json"),
    ],
)
def test_the_kept_copy_is_what_the_command_prints(
    command: str, copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A field added to a model reaches editors only once the copy is regenerated."""
    assert main(command.split()) == 0
    printed = capsys.readouterr().out
    where = copy.relative_to(ROOT)
    assert copy.read_text() == printed, (
        f"{where} differs from `escalera {command}`: run `escalera {command} > {where}`"
    )


def test_the_policy_schema_speaks_the_editors_dialect() -> None:
    """VS Code's YAML extension validates draft 7 and ignores newer keywords: a field checked
    only by one (``prefixItems``, say) would never be marked in the editor."""
    text = POLICY_SCHEMA.read_text()
    assert json.loads(text)["$schema"] == "http://json-schema.org/draft-07/schema#"
    newer = {
        "prefixItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentRequired",
        "dependentSchemas",
        "$dynamicRef",
        "$recursiveRef",
        "minContains",
        "maxContains",
    }
    assert not {word for word in newer if f'"{word}"' in text}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_policy_is_valid_for_the_editor(path: Path) -> None:
    """No preset or example policy, all of which `policy check` accepts, is marked wrong."""
    load_policy(path)
    assert problems(POLICY_SCHEMA, path.read_text()) == []


def test_the_integrations_example_is_valid_for_the_editor() -> None:
    """deploy/integrations.yaml, the working example `escalera up` uses, is not marked wrong."""
    text = (DEPLOY / "integrations.yaml").read_text()
    assert problems(DEPLOY / "integrations.schema.json", text) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("first_response: 1h", "first_responce: 1h"),
        ("first_response: 1h", "first_response: 1 hour"),
        ('mon: ["08:00-17:00"]', 'mon: ["8-17"]'),
        ('mon: ["08:00-17:00"]', 'monday: ["08:00-17:00"]'),
        ("warn_at: [75, 90]", "warn_at: [75, 100]"),
        ("from: first_response}", "from: response}"),
        ("pause_when: [pending, on_hold]", "pause_when: [pending, waiting]"),
    ],
)
def test_a_typing_mistake_is_marked_as_policy_check_refuses_it(before: str, after: str) -> None:
    """The editor flags a misspelt field, a duration or hours written otherwise, an unknown
    weekday, anchor or status, a warning at 100 %: each one `policy check` refuses too."""
    good = CONTRACT_EXAMPLE.read_text()
    assert before in good
    bad = good.replace(before, after, 1)
    with pytest.raises(PolicyError):
        parse_policy(bad, "policy.yaml")
    assert problems(POLICY_SCHEMA, bad), f"the schema accepts {after!r}"


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_preset_names_the_schema_on_its_first_line(path: Path) -> None:
    """Opened in VS Code (YAML extension), a preset gets completion and checks with no set-up."""
    first = path.read_text().splitlines()[0]
    assert first == MODELINE
    target = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == POLICY_SCHEMA
