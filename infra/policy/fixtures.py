"""Policy fixtures: YAML files beside each rule (``policies/rules/<rule>/fixtures/{pass,fail}-*.yaml``).

A fixture is a mapping::

    description: why this passes or fails          # optional
    config: {requireDigest: true}                   # optional: the rule's policy config properties
    stack_config: {environment: prod, waivers: []}  # optional: stack config for the run
    expect:                                         # fail fixtures only, and required there
      - resource: dev-qwen3-deployment              # a fixture resource's name; omit for the stack
        message: sets hostNetwork                   # a fragment of the violation's message
        policy: other-policy                        # optional: the rule of the fixture's folder
    resources:
      - type: kubernetes:apps/v1:Deployment
        name: dev-qwen3-deployment
        props: {...}                                # inputs as the engine sends them (camelCase)
        options: {protect: false}                   # optional
        parent: other-resource-name                 # optional: logical name of another fixture resource

A pass fixture may be a bare list (its ``resources``). ``expect`` lists every violation the rule must
report: each entry must be matched by a violation of its policy on that resource whose message contains
the fragment, and every violation the rule reports must match an entry. The string ``<unknown>`` stands
for a value not known during preview and ``{$secret: value}`` for a secret input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra.plan.model import UNKNOWN, RecordedResource, Secret

UNKNOWN_MARK = "<unknown>"
FIXTURE_KEYS = frozenset({"description", "config", "stack_config", "expect", "resources"})
EXPECT_KEYS = frozenset({"resource", "message", "policy"})
SECRET_MARK = "$secret"
FIXTURE_STACK = "fixture"
FIXTURE_PROJECT = "slm-deploy"


class FixtureError(ValueError):
    """A malformed fixture file."""


@dataclass(frozen=True)
class Expectation:
    """One violation a fail fixture must produce."""

    #: A fragment of the violation message (without the policy description line).
    message: str
    #: The fixture resource's name; None for a violation of the stack as a whole.
    resource: str | None = None
    #: The policy; None for the rule of the fixture's folder.
    policy: str | None = None

    def matches(self, policy: str, resource: str | None, message: str, default_policy: str) -> bool:
        return (self.policy or default_policy) == policy and self.resource == resource and self.message in message


@dataclass(frozen=True)
class Fixture:
    path: Path
    rule_folder: str
    expected: Literal["pass", "fail"]
    resources: list[RecordedResource]
    config: dict[str, Any] = field(default_factory=dict)
    stack_config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: The violations a fail fixture must produce (empty for pass fixtures).
    expect: tuple[Expectation, ...] = ()

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


def _expectations(path: Path, raw: Any, names: set[str]) -> tuple[Expectation, ...]:
    if not isinstance(raw, list) or not raw:
        raise FixtureError(f"{path}: 'expect' is a non-empty list of {{resource, message}} entries")
    found: list[Expectation] = []
    for entry in raw:
        if not isinstance(entry, dict) or not set(entry) <= EXPECT_KEYS:
            raise FixtureError(f"{path}: an 'expect' entry is a mapping with keys {sorted(EXPECT_KEYS)}: {entry!r}")
        message = entry.get("message")
        if not isinstance(message, str) or not message.strip():
            raise FixtureError(f"{path}: an 'expect' entry needs a non-empty message fragment: {entry!r}")
        resource = entry.get("resource")
        if resource is not None and str(resource) not in names:
            raise FixtureError(f"{path}: 'expect' names resource {resource!r}, which the fixture does not define")
        policy = entry.get("policy")
        found.append(
            Expectation(
                message=message,
                resource=None if resource is None else str(resource),
                policy=None if policy is None else str(policy),
            )
        )
    return tuple(found)


def load_fixture(path: Path) -> Fixture:
    """Read a fixture; :class:`FixtureError` if it is malformed (a fail fixture without ``expect`` is)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        data = {"resources": data}
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
        raise FixtureError(f"{path}: a fixture is a list of resources or a mapping with 'resources'")
    unknown = sorted(str(k) for k in set(data) - FIXTURE_KEYS)
    if unknown:
        raise FixtureError(f"{path}: unknown fixture keys {unknown}; known are {sorted(FIXTURE_KEYS)}")
    expected: Literal["pass", "fail"]
    if path.name.startswith("pass-"):
        expected = "pass"
    elif path.name.startswith("fail-"):
        expected = "fail"
    else:
        raise FixtureError(f"{path}: fixture file names start with pass- or fail-")
    names = {str(e["name"]) for e in data["resources"] if isinstance(e, dict) and "name" in e}
    expect: tuple[Expectation, ...] = ()
    if expected == "pass" and "expect" in data:
        raise FixtureError(f"{path}: a pass fixture expects no violation: remove 'expect'")
    if expected == "fail":
        if "expect" in data:
            expect = _expectations(path, data["expect"], names)
        else:
            raise FixtureError(
                f"{path}: a fail fixture states the violations it must produce: add "
                "'expect: [{resource: <name>, message: <fragment>}]' beside 'resources'"
            )
    return Fixture(
        path=path,
        rule_folder=path.parent.parent.name,
        expected=expected,
        resources=resources_from(data["resources"]),
        config=dict(data.get("config") or {}),
        stack_config=dict(data.get("stack_config") or {}),
        description=str(data.get("description") or ""),
        expect=expect,
    )


def discover_fixtures(pack_dir: Path) -> list[Path]:
    """Every fixture file of every rule, sorted."""
    return sorted((pack_dir / "rules").glob("*/fixtures/*.yaml"))
