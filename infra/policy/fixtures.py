"""Policy fixtures: YAML files beside each rule (``policies/rules/<rule>/fixtures/{pass,fail}-*.yaml``).

A fixture is a mapping::

    description: why this passes or fails          # optional
    config: {requireDigest: true}                   # optional: the rule's policy config properties
    stack_config: {environment: prod, waivers: []}  # optional: stack config for the run
    resources:
      - type: kubernetes:apps/v1:Deployment
        name: dev-qwen3-deployment
        props: {...}                                # inputs as the engine sends them (camelCase)
        options: {protect: false}                   # optional
        parent: other-resource-name                 # optional: logical name of another fixture resource

(a bare list is also accepted, as ``resources``). The string ``<unknown>`` stands for a value not
known during preview and ``{$secret: value}`` for a secret input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra.plan.model import UNKNOWN, RecordedResource, Secret

UNKNOWN_MARK = "<unknown>"
SECRET_MARK = "$secret"
FIXTURE_STACK = "fixture"
FIXTURE_PROJECT = "slm-deploy"


@dataclass(frozen=True)
class Fixture:
    path: Path
    rule_folder: str
    expected: Literal["pass", "fail"]
    resources: list[RecordedResource]
    config: dict[str, Any] = field(default_factory=dict)
    stack_config: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.rule_folder}/{self.path.name}"


def _value(raw: Any) -> Any:
    if raw == UNKNOWN_MARK:
        return UNKNOWN
    if isinstance(raw, Mapping):
        if set(raw) == {SECRET_MARK}:
            return Secret(_value(raw[SECRET_MARK]))
        return {str(k): _value(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_value(v) for v in raw]
    return raw


def urn_for(resource_type: str, name: str, parent_type: str | None = None) -> str:
    qualified = f"{parent_type}${resource_type}" if parent_type else resource_type
    return f"urn:pulumi:{FIXTURE_STACK}::{FIXTURE_PROJECT}::{qualified}::{name}"


def resources_from(entries: list[Any]) -> list[RecordedResource]:
    """Recorded resources from fixture entries (see the module docstring)."""
    types = {str(e["name"]): str(e["type"]) for e in entries}
    urns: dict[str, str] = {}
    result: list[RecordedResource] = []
    for entry in entries:
        name, rtype = str(entry["name"]), str(entry["type"])
        parent = entry.get("parent")
        parent_urn = urns.get(parent) if parent else None
        if parent and parent_urn is None:
            parent_urn = urn_for(types.get(parent, "pulumi:pulumi:Stack"), parent)
        urn = str(entry.get("urn") or urn_for(rtype, name, types.get(parent) if parent else None))
        urns[name] = urn
        options = entry.get("options") or {}
        result.append(
            RecordedResource(
                urn=urn,
                type=rtype,
                name=name,
                custom=bool(entry.get("custom", True)),
                inputs=_value(entry.get("props") or {}),
                parent=parent_urn,
                protect=bool(options.get("protect", False)),
                dependencies=tuple(str(d) for d in entry.get("dependencies") or ()),
            )
        )
    return result


def load_fixture(path: Path) -> Fixture:
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        data = {"resources": data}
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise ValueError(f"{path}: a fixture is a list of resources or a mapping with 'resources'")
    expected: Literal["pass", "fail"]
    if path.name.startswith("pass-"):
        expected = "pass"
    elif path.name.startswith("fail-"):
        expected = "fail"
    else:
        raise ValueError(f"{path}: fixture file names start with pass- or fail-")
    return Fixture(
        path=path,
        rule_folder=path.parent.parent.name,
        expected=expected,
        resources=resources_from(data["resources"]),
        config=dict(data.get("config") or {}),
        stack_config=dict(data.get("stack_config") or {}),
        description=str(data.get("description") or ""),
    )


def discover_fixtures(pack_dir: Path) -> list[Path]:
    """Every fixture file of every rule, sorted."""
    return sorted((pack_dir / "rules").glob("*/fixtures/*.yaml"))
