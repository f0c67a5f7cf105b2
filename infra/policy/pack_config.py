"""Policy pack config: read a ``--policy-pack-config`` file and reconcile it as the Pulumi CLI does.

Order, for each policy: the level the pack declares (``GetAnalyzerInfo``) and the defaults of its
config schema, then the pack's ``initialConfig``, then the file's ``"all"`` level, then the file's
entry for the policy (a level string, or an object with ``enforcementLevel`` and properties). The
result is validated against each policy's config schema (unknown keys are errors).

Which file judges a stack is decided here too, by the stack's *name* and never by its stack file
(:func:`bind_level`): each level file lists the stacks it binds in the ``stacks`` property of the
``environment-binding`` policy, a stack no file lists gets the strictest level (``prod``), and that
policy refuses a stack whose declared ``slm-deploy:environment`` differs from the bound level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from infra.config.stack import StackConfig
    from infra.plan.model import RecordedResource
    from infra.plan.stack import StackPlan
    from policies.lib.targets import Target

    from .model import PolicyReport

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
        _check_values(schema, values, source)
        result[schema.name] = ReconciledPolicy(levels[schema.name], dict(values))
    return result


def _check_values(schema: PolicySchema, values: Mapping[str, Any], source: str) -> None:
    """The policy's properties against its config schema. Most policies have no properties and require none: an
    empty object is valid there, with no validator built (that was a tenth of `check --stack prod`)."""
    if not values and not schema.required:
        return
    import jsonschema

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


# --------------------------------------------------------------------------- level binding

#: The stack policy that holds the binding in every level file and checks it during a run.
BINDING_POLICY = "environment-binding"
#: Level files from the least to the most strict; a stack no level file binds gets the strictest.
LEVEL_ORDER = ("dev", "staging", "prod")
STRICTEST_LEVEL = LEVEL_ORDER[-1]
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class LevelBinding:
    """Which level file judges a stack, and why: chosen by the stack's *name*, never by its content.

    Each ``<level>.json`` of the pack's ``config/`` folder lists the stacks it binds in the
    ``stacks`` property of :data:`BINDING_POLICY` (names, or glob patterns such as ``dev-*``); a
    stack no file lists is judged at :data:`STRICTEST_LEVEL`.
    """

    stack: str
    level: str
    config_file: Path
    #: The entry of the level file's ``stacks`` list that matched; ``None``: the default for unknown stacks.
    matched: str | None = None
    #: Set when the stack's target (cluster) is bound to this level, stricter than its name's: what and where.
    by_target: str | None = None

    def describe(self) -> str:
        """Why this level: ``bound by name in prod.json``, ``bound by the pattern 'dev-*' in dev.json``."""
        if self.by_target is not None:
            return self.by_target
        if self.matched is None:
            return "no level file binds this stack: the strictest level"
        how = "by name" if self.matched == self.stack else f"by the pattern {self.matched!r}"
        return f"bound {how} in {self.config_file.name}"


def level_files(config_dir: Path) -> dict[str, Path]:
    """The level files of a pack's ``config/`` folder, by level name (the file's stem)."""
    return {path.stem: path for path in sorted(config_dir.glob("*.json"))}


def bound_stacks(config: Mapping[str, Any], source: str) -> list[str]:
    """The ``stacks`` list of :data:`BINDING_POLICY` in one level file's content (empty when absent)."""
    entry = config.get(BINDING_POLICY)
    if not isinstance(entry, Mapping):
        return []
    stacks = entry.get("stacks", [])
    if not isinstance(stacks, list) or not all(isinstance(s, str) and s.strip() for s in stacks):
        raise PolicyConfigError(f"{source}: '{BINDING_POLICY}'.stacks must be a list of stack names or patterns")
    return list(stacks)


def _matches(stack: str, entry: str) -> bool:
    from fnmatch import fnmatchcase

    return stack == entry or (bool(_GLOB_CHARACTERS & set(entry)) and fnmatchcase(stack, entry))


def bind_level(stack: str, config_dir: Path) -> LevelBinding:
    """The level file that judges ``stack`` (see :class:`LevelBinding`).

    A name listed in a level file wins over patterns; a stack matched by the patterns of two
    files, or listed by name in two, is an error (the binding must be unambiguous).
    """
    files = level_files(config_dir)
    exact: list[tuple[str, str]] = []
    patterns: list[tuple[str, str]] = []
    for level, path in files.items():
        for entry in bound_stacks(read_config_file(path), str(path)):
            if entry == stack:
                exact.append((level, entry))
            elif _matches(stack, entry):
                patterns.append((level, entry))
    for found in (exact, patterns):
        levels = sorted({level for level, _ in found})
        if len(levels) > 1:
            where = ", ".join(f"{level}.json ({entry!r})" for level, entry in found)
            raise PolicyConfigError(
                f"{config_dir}: stack {stack!r} is bound by several level files: {where}; bind it in one"
            )
        if found:
            level, entry = found[0]
            return LevelBinding(stack, level, files[level], entry)
    if STRICTEST_LEVEL not in files:
        raise PolicyConfigError(f"{config_dir}: no {STRICTEST_LEVEL}.json for stacks no level file binds")
    return LevelBinding(stack, STRICTEST_LEVEL, files[STRICTEST_LEVEL])


def bound_targets(config: Mapping[str, Any], source: str) -> tuple[list[str], list[str]]:
    """The ``contexts`` and ``clusterIds`` lists of :data:`BINDING_POLICY` in one level file's content."""
    from policies.lib.targets import CLUSTER_IDS, CONTEXTS

    entry = config.get(BINDING_POLICY)
    found: list[list[str]] = []
    for key in (CONTEXTS, CLUSTER_IDS):
        values = entry.get(key, []) if isinstance(entry, Mapping) else []
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise PolicyConfigError(f"{source}: '{BINDING_POLICY}'.{key} must be a list of names or patterns")
        found.append(list(values))
    return found[0], found[1]


def bind_target(binding: LevelBinding, target: Target | None, config_dir: Path) -> LevelBinding:
    """``binding``, or the strictest level stricter than it whose level file lists the stack's target."""
    if target is None:
        return binding
    from policies.lib.targets import listed

    files = level_files(config_dir)
    order = list(LEVEL_ORDER)
    start = order.index(binding.level) + 1 if binding.level in order else len(order)
    for level in reversed(order[start:]):
        path = files.get(level)
        if path is None:
            continue
        contexts, cluster_ids = bound_targets(read_config_file(path), str(path))
        entry = listed(target, contexts, cluster_ids)
        if entry is not None:
            why = (
                f"its target, {target.describe()}, is bound by {entry!r} in {path.name} (stricter than {binding.level})"
            )
            return LevelBinding(binding.stack, level, path, binding.matched, by_target=why)
    return binding


def verify_binding(binding: LevelBinding, enforcement_level: str | None, properties: Mapping[str, Any]) -> None:
    """Refuse a level file that does not judge its own binding: :data:`BINDING_POLICY` must be
    mandatory there and name the file's level as its ``environment``.

    ``enforcement_level`` and ``properties`` are the reconciled values a run used (``None``: the pack
    has no such policy).
    """
    if enforcement_level is None:
        raise PolicyConfigError(f"the policy pack has no '{BINDING_POLICY}' policy: it cannot judge level bindings")
    environment = properties.get("environment")
    if enforcement_level != "mandatory" or environment != binding.level:
        raise PolicyConfigError(
            f"{binding.config_file}: policy '{BINDING_POLICY}' must be mandatory with environment "
            f"'{binding.level}' (it is {enforcement_level}, environment {environment!r})"
        )


class PackRunner(Protocol):
    """:func:`infra.policy.analyzer.run_policy_pack` (passed in: the analyzer imports this module)."""

    def __call__(
        self,
        resources: Sequence[RecordedResource],
        environment_config: Path,
        stack_config: Mapping[str, Any],
        *,
        stack: str,
        pack_dir: Path,
    ) -> PolicyReport: ...


def pack_stack_config(config: StackConfig) -> dict[str, Any]:
    """The stack's config as the Pulumi CLI hands it to a policy pack: the keys the stack file sets.

    Secrets are left out: offline they are ciphertext, and no rule reads a secret's value.
    """
    return config.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"secrets"})


def judge_stack(plan: StackPlan, pack_dir: Path, run: PackRunner) -> PolicyReport:
    """Run the pack in ``pack_dir`` on a planned stack at the level its *name* is bound to.

    The stack's config goes in as the Pulumi CLI hands it to a pack (:func:`pack_stack_config`): the
    ``environment-binding`` policy compares the declared environment with the level, and rules read the
    waivers, the Kubernetes version and raw chart values; the level file must judge its own binding
    (:func:`verify_binding`). The report carries the level and why it applies.
    """
    from .targets import plan_target

    binding = bind_target(bind_level(plan.stack, pack_dir / "config"), plan_target(plan), pack_dir / "config")
    from infra.cost.budget import budget_stack_config

    # The priced plan goes in beside the stack's own keys: the monthly-budget rule judges it.
    stack_config = {**pack_stack_config(plan.config), **budget_stack_config(plan)}
    report = run(plan.run.resources, binding.config_file, stack_config, stack=plan.stack, pack_dir=pack_dir)
    policy = report.policy(BINDING_POLICY)
    verify_binding(binding, policy.enforcement_level if policy else None, policy.config if policy else {})
    report.level = binding.level
    report.binding = binding.describe()
    return report.named()
