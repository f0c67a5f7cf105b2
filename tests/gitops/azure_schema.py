"""An Azure Pipelines definition checked offline against Microsoft's schema (the one the Azure Pipelines VS Code
extension uses, vendored by the `check-jsonschema` package), read the way the Azure Pipelines parser reads YAML:

- every scalar is a string (`fetchDepth: 0` is "0"); where the schema asks for a boolean, "true"/"false" pass;
- a template expression (`${{ if … }}:`) inserts its content where it stands (both branches are checked);
- Marketplace tasks are not in the schema's task list: Pulumi@1 is checked against its own inputs (from the
  task's task.json in pulumi/pulumi-az-pipelines-task) and stands in as a script step for the rest.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from functools import cache
from typing import Any

#: Inputs of the Pulumi@1 Marketplace task.
PULUMI_TASK_INPUTS = {
    "azureSubscription", "awsServiceConnection", "gcpServiceConnection", "command", "args", "cwd", "stack",
    "createStack", "versionSpec", "loginArgs", "useThirdPartyToken",
}  # fmt: skip

_EXPRESSION = re.compile(r"^\$\{\{.*\}\}$")


@cache
def _schema() -> dict[str, Any]:
    text = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("azure-pipelines.json")
    data: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return data


def _marketplace(step: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    if step.get("task") != "Pulumi@1":
        return step
    unknown = set(step.get("inputs", {})) - PULUMI_TASK_INPUTS
    if unknown:
        problems.append(f"Pulumi@1: unknown inputs {sorted(unknown)}")
    rest = {key: value for key, value in step.items() if key not in ("task", "inputs")}
    return {"script": "pulumi", **rest}


def as_parsed(value: Any, problems: list[str]) -> Any:
    """``value`` as the Azure Pipelines parser sees it (see the module docstring)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _EXPRESSION.match(str(key)) and isinstance(item, dict):
                out.update(as_parsed(item, problems))
            else:
                out[str(key)] = as_parsed(item, problems)
        return _marketplace(out, problems)
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if isinstance(item, dict) and len(item) == 1:
                (key, inner), = item.items()
                if _EXPRESSION.match(str(key)) and isinstance(inner, list):
                    items.extend(as_parsed(inner, problems))
                    continue
            items.append(as_parsed(item, problems))
        return items
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def schema_errors(pipeline: Any) -> list[str]:
    """Why ``pipeline`` (parsed YAML) is not a valid Azure Pipelines definition; empty when it is."""
    import jsonschema
    from jsonschema import validators

    problems: list[str] = []
    document = as_parsed(pipeline, problems)
    checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "boolean", lambda _, value: isinstance(value, bool) or str(value).lower() in ("true", "false")
    )
    validator = validators.extend(jsonschema.Draft7Validator, type_checker=checker)(_schema())
    for error in validator.iter_errors(document):
        best = jsonschema.exceptions.best_match([error])
        problems.append(f"{'/'.join(map(str, best.absolute_path))}: {best.message[:300]}")
    return problems
