"""The policy file's JSON Schema, for an editor's YAML language server.

The schema checks a file's shape as it is typed: field names (unknown ones are refused, as the
loader refuses them), types, enumerations, durations and ranges of hours as policy files write
them. What only the whole file or the outside world can tell (a plan naming an unknown calendar,
a time zone that does not exist, a target that an earlier one always takes first) is left to
``escalera policy check``: the schema accepts every valid policy, and not only valid ones.

It is declared draft 7, the dialect the YAML language server (VS Code's YAML extension)
validates with; a newer declaration only earns a warning there. pydantic's output uses no
newer keyword: ``$defs`` is merely where the definitions sit, and ``$ref`` points into it.
"""

from __future__ import annotations

import json
from typing import Any

from shared.policy import Policy

DIALECT = "http://json-schema.org/draft-07/schema#"


def json_schema() -> str:
    """The schema as ``escalera policy schema`` prints it and deploy/policy.schema.json keeps it."""
    schema: dict[str, Any] = {"$schema": DIALECT, **Policy.model_json_schema(by_alias=True)}
    schema["title"] = "Escalera policy"
    return json.dumps(schema, indent=2)
