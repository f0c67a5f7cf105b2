"""Policy pack config: read a ``--policy-pack-config`` file and reconcile it as the Pulumi CLI does.

Order, for each policy: the level the pack declares (``GetAnalyzerInfo``) and the defaults of its
config schema, then the pack's ``initialConfig``, then the file's ``"all"`` level, then the file's
entry for the policy (a level string, or an object with ``enforcementLevel`` and properties). The
result is validated against each policy's config schema (unknown keys are errors).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS = ("advisory", "mandatory", "disabled", "remediate")


class PolicyConfigError(ValueError):
    """The policy pack config is malformed or does not match a policy's schema."""


@dataclass(frozen=True)
class PolicySchema:
    """What the analyzer says about one policy: default level and config schema."""

    name: str
    enforcement_level: str
    properties: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReconciledPolicy:
    enforcement_level: str
    properties: dict[str, Any]


def read_config_file(path: Path | str) -> dict[str, Any]:
    source = Path(path)
    try:
        value = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise PolicyConfigError(f"{source}: policy pack config file not found") from e
    except json.JSONDecodeError as e:
        raise PolicyConfigError(f"{source}: not valid JSON ({e.msg}, line {e.lineno})") from e
    if not isinstance(value, dict):
        raise PolicyConfigError(f"{source}: a policy pack config must be a JSON object")
    return value


def _split(entry: Any, where: str) -> tuple[str | None, dict[str, Any]]:
    level: Any
    if isinstance(entry, str):
        level, props = entry, {}
    elif isinstance(entry, Mapping):
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        level = entry.get("enforcementLevel")
    else:
        raise PolicyConfigError(f"{where}: expected an enforcement level or an object, got {type(entry).__name__}")
    if level is not None and level not in LEVELS:
        raise PolicyConfigError(f"{where}: enforcementLevel '{level}' is not one of {', '.join(LEVELS)}")
    return level, props


def reconcile(
    schemas: list[PolicySchema],
    initial_config: Mapping[str, Any],
    config: Mapping[str, Any],
    source: str,
) -> dict[str, ReconciledPolicy]:
    """The level and properties each policy runs with (see the module docstring)."""
    import jsonschema

    known = {s.name: s for s in schemas}
    levels: dict[str, str] = {s.name: s.enforcement_level for s in schemas}
    props: dict[str, dict[str, Any]] = {
        s.name: {k: v["default"] for k, v in s.properties.items() if isinstance(v, Mapping) and "default" in v}
        for s in schemas
    }

    def apply(layer: Mapping[str, Any], layer_source: str) -> None:
        if "all" in layer:
            level, extra = _split(layer["all"], f"{layer_source}: key 'all'")
            if extra:
                raise PolicyConfigError(f"{layer_source}: key 'all' takes only an enforcement level")
            if level is not None:
                for name in levels:
                    levels[name] = level
        for name, entry in layer.items():
            if name == "all":
                continue
            if name not in known:
                raise PolicyConfigError(
                    f"{layer_source}: key '{name}' is not a policy of this pack (known: {', '.join(sorted(known))})"
                )
            level, extra = _split(entry, f"{layer_source}: key '{name}'")
            if level is not None:
                levels[name] = level
            props[name].update(extra)

    apply(initial_config, f"{source} (pack initialConfig)")
    apply(config, source)

    result: dict[str, ReconciledPolicy] = {}
    for schema in schemas:
        values = props[schema.name]
        unknown = sorted(set(values) - set(schema.properties))
        if unknown:
            allowed = ", ".join(sorted(schema.properties)) or "none"
            raise PolicyConfigError(
                f"{source}: policy '{schema.name}' has no config key {', '.join(repr(k) for k in unknown)} "
                f"(known keys: {allowed})"
            )
        json_schema = {
            "type": "object",
            "properties": schema.properties,
            "required": list(schema.required),
            "additionalProperties": False,
        }
        error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(json_schema).iter_errors(values))
        if error is not None:
            path = ".".join(str(p) for p in error.absolute_path) or "(config)"
            raise PolicyConfigError(f"{source}: policy '{schema.name}' key {path}: {error.message}")
        result[schema.name] = ReconciledPolicy(levels[schema.name], dict(values))
    return result
