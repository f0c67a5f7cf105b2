"""Run the real policy pack offline, through the analyzer protocol, as the Pulumi engine does.

The pack's ``pulumi_policy.policy._PolicyAnalyzerServicer`` (private: ``pulumi-policy`` is pinned to
1.21.0) is driven in-process without gRPC: ``GetAnalyzerInfo``, then ``Configure`` with the
reconciled config of the environment, ``Analyze`` once per resource and ``AnalyzeStack`` once with all
of them. Requests are the ``analyzer_pb2`` messages the engine sends; properties are encoded as the
engine encodes them (secrets as the secret signature object, unknowns as the unknown sentinel).
Stack config (environment, waivers) is set with ``pulumi.runtime.set_config`` for the run and
restored afterwards. Heavy imports happen only when a run starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import policies
from infra import collector
from infra.plan.model import RecordedResource
from infra.plan.wire import to_wire

from .model import Level, PolicyInfo, PolicyReport, PolicyResult, Status, WaiverInfo
from .pack_config import PolicyConfigError, PolicySchema, ReconciledPolicy, read_config_file, reconcile

if TYPE_CHECKING:
    from google.protobuf import struct_pb2

#: The pack that ships with slm-deploy (a package of its own: installed beside ``infra``).
DEFAULT_PACK_DIR = Path(policies.__file__).resolve().parent
CONFIG_NAMESPACE = "slm-deploy"


_LEVEL_NAMES: dict[int, Level] = {0: "advisory", 1: "mandatory", 2: "disabled", 3: "remediate"}
_LEVEL_CODES = {v: k for k, v in _LEVEL_NAMES.items()}
_CANT_RUN = "can't run policy"


def load_pack(pack_dir: Path | None = None) -> ModuleType:
    """``policies.pack`` of ``pack_dir`` (default: the repository's ``policies/``), without side effects."""
    directory = (pack_dir or DEFAULT_PACK_DIR).resolve()
    existing = sys.modules.get("policies")
    if existing is None or Path(getattr(existing, "__file__", "") or "").resolve().parent != directory:
        spec = importlib.util.spec_from_file_location(
            "policies", directory / "__init__.py", submodule_search_locations=[str(directory)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"no policy pack package in {directory}")
        for name in [m for m in sys.modules if m == "policies" or m.startswith("policies.")]:
            del sys.modules[name]
        module = importlib.util.module_from_spec(spec)
        sys.modules["policies"] = module
        spec.loader.exec_module(module)
    return importlib.import_module("policies.pack")


def _schemas(info: Any) -> list[PolicySchema]:
    """Each policy's default level and config schema from an ``AnalyzerInfo`` response."""
    from google.protobuf import json_format

    return [
        PolicySchema(
            name=p.name,
            enforcement_level=_LEVEL_NAMES[p.enforcementLevel],
            properties=json_format.MessageToDict(p.configSchema.properties),
            required=tuple(p.configSchema.required),
        )
        for p in info.policies
    ]


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    from google.protobuf import struct_pb2

    message = struct_pb2.Struct()
    message.update(to_wire(value))
    return message


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    parts = urn.split("::")
    if len(parts) < 4:
        return "", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


@contextmanager
def _stack_config(values: Mapping[str, str]) -> Iterator[None]:
    import pulumi.runtime.config as runtime_config

    config = runtime_config.CONFIG.get()
    saved = {k: config[k] for k in values if k in config}
    try:
        for key, value in values.items():
            runtime_config.set_config(key, value)
        yield
    finally:
        for key in values:
            if key in saved:
                config[key] = saved[key]
            else:
                config.pop(key, None)


def _config_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _parse_fields(text: str) -> dict[str, str]:
    try:
        words = shlex.split(text)
    except ValueError:
        return {}
    return dict(w.split("=", 1) for w in words if "=" in w)


@collector.paused()
def run_policy_pack(
    resources: Sequence[RecordedResource],
    environment_config: Path | str | Mapping[str, Any],
    stack_config: Mapping[str, Any] | None = None,
    *,
    stack: str | None = None,
    pack_dir: Path | None = None,
) -> PolicyReport:
    """Run the pack on ``resources`` with an environment's policy config.

    ``environment_config`` is a ``--policy-pack-config`` JSON file (e.g. ``policies/config/dev.json``)
    or its parsed content. ``stack_config`` maps config keys (``slm-deploy:waivers`` or just
    ``waivers``) to values (strings as in the stack file; other values are JSON-encoded), e.g.
    ``{"environment": "prod", "waivers": [...], "today": "2026-03-01"}``.
    Raises :class:`PolicyConfigError` for a malformed config.
    """
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    pack = load_pack(pack_dir)
    if isinstance(environment_config, Mapping):
        user_config, source = dict(environment_config), "<policy config>"
    else:
        user_config, source = read_config_file(environment_config), str(environment_config)

    servicer: Any = _PolicyAnalyzerServicer(
        pack.PACK_NAME, pack.PACK_VERSION, list(pack.POLICIES), EnforcementLevel.ADVISORY, None, pack.PACK_DESCRIPTION
    )
    schemas, initial = _analyzer_info(pack, servicer)
    reconciled = reconcile(schemas, initial, user_config, source)
    for name in sorted(pack.ALWAYS_ADVISORY):
        if name in reconciled and reconciled[name].enforcement_level != "advisory":
            raise PolicyConfigError(
                f"{source}: policy '{name}' must stay advisory (it is "
                f"'{reconciled[name].enforcement_level}'): disabled would hide waived results and mandatory "
                f'would block on them; add "{name}": "advisory" after "all"'
            )

    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, policy in reconciled.items():
        entry = request.policyConfig[name]
        entry.enforcementLevel = cast(Any, _LEVEL_CODES[cast(Level, policy.enforcement_level)])
        entry.properties.update(to_wire(policy.properties))
    servicer.Configure(request, None)
    by_type = _TypeServicers(pack, request)

    config_values = {
        (k if ":" in k else f"{CONFIG_NAMESPACE}:{k}"): _config_value(v) for k, v in (stack_config or {}).items()
    }
    environment = config_values.get(f"{CONFIG_NAMESPACE}:environment")
    by_urn = {r.urn: r for r in resources}
    structs: dict[str, Any] = {}

    def properties(record: RecordedResource) -> Any:
        """The record's inputs as a protobuf Struct, encoded once for Analyze and AnalyzeStack."""
        if record.urn not in structs:
            structs[record.urn] = _struct(record.inputs)
        return structs[record.urn]

    def provider_message(ref: str | None) -> Any:
        if not ref:
            return None
        urn = ref
        if urn not in by_urn and urn.count("::") >= 4:
            urn = urn.rsplit("::", 1)[0]
        record = by_urn.get(urn)
        if record is not None:
            return analyzer_pb2.AnalyzerProviderResource(
                type=record.type, properties=_struct(record.inputs), urn=record.urn, name=record.name
            )
        ptype, pname = _urn_type_and_name(urn)
        return analyzer_pb2.AnalyzerProviderResource(type=ptype, urn=urn, name=pname)

    def options(record: RecordedResource) -> Any:
        return analyzer_pb2.AnalyzerResourceOptions(protect=record.protect, parent=record.parent or "")

    results: list[PolicyResult] = []
    meta = {r.name: r for r in pack.RULES}
    levels = {name: cast(Level, p.enforcement_level) for name, p in reconciled.items()}
    enabled_resource = [r.name for r in pack.RULES if r.kind == "resource" and levels[r.name] != "disabled"]
    enabled_stack = [r.name for r in pack.RULES if r.kind == "stack" and levels[r.name] != "disabled"]

    def convert(diag: Any, record: RecordedResource | None) -> PolicyResult:
        description = diag.description
        text = diag.message
        if text.startswith(description + "\n"):
            text = text[len(description) + 1 :]
        elif text == description:
            text = ""
        urn = diag.urn or (record.urn if record else "")
        target = by_urn.get(urn) if urn else None
        name = diag.policyName
        status: Status = "violation"
        level: Level = _LEVEL_NAMES[diag.enforcementLevel]
        waiver: WaiverInfo | None = None
        if text.startswith(_CANT_RUN) or diag.message.startswith(_CANT_RUN):
            status, text = "not-run", diag.message
        elif name in pack.ALWAYS_ADVISORY and text.startswith("waived: "):
            head, _, rest = text.partition("\n")
            fields = _parse_fields(head[len("waived: ") :])
            name = fields.get("policy", name)
            status = "waived"
            level = levels.get(name, level)
            waiver = WaiverInfo(
                policy=name,
                resource=fields.get("resource", target.name if target else ""),
                reason=fields.get("reason", ""),
                owner=fields.get("owner", ""),
                expires=fields.get("expires", ""),
                covers=fields.get("covers", ""),
            )
            text = "\n".join(line.removeprefix("- ") for line in rest.splitlines()) or head
        else:
            main, marker, expired = text.partition("\nwaiver expired on ")
            if marker:
                date_text, _, fields_text = expired.partition(": ")
                fields = _parse_fields(fields_text)
                waiver = WaiverInfo(
                    policy=name,
                    resource=target.name if target else "",
                    reason=fields.get("reason", ""),
                    owner=fields.get("owner", ""),
                    expires=date_text.strip(),
                    expired=True,
                    covers=fields.get("covers", ""),
                )
                text = f"{main} (waiver expired on {date_text.strip()}, owner {waiver.owner})"
        rule = meta.get(name)
        return PolicyResult(
            policy_name=name,
            rule_id=rule.id if rule else "",
            title=rule.title if rule else name,
            severity=rule.severity if rule else "medium",
            enforcement_level=level,
            status=status,
            message=text,
            resource_urn=urn or None,
            resource_name=target.name if target else None,
            resource_type=target.type if target else None,
            waiver=waiver,
        )

    def passed(name: str, record: RecordedResource | None) -> PolicyResult:
        rule = meta[name]
        return PolicyResult(
            policy_name=name,
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            enforcement_level=levels[name],
            status="pass",
            message="",
            resource_urn=record.urn if record else None,
            resource_name=record.name if record else None,
            resource_type=record.type if record else None,
        )

    with _stack_config(config_values):
        reset = getattr(pack, "reset_state", None)
        if reset is not None:
            reset()
        for record in resources:
            typed, skipped = by_type.get(record.type)
            if typed is None:
                continue  # no resource policy looks at this type: every one is not applicable
            response = typed.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=record.type,
                    properties=properties(record),
                    urn=record.urn,
                    name=record.name,
                    options=options(record),
                    provider=provider_message(record.provider),
                ),
                None,
            )
            not_applicable = {n.policy_name for n in response.not_applicable} | skipped
            reported = set()
            for diag in response.diagnostics:
                results.append(convert(diag, record))
                reported.add(diag.policyName)
            results.extend(passed(n, record) for n in enabled_resource if n not in not_applicable and n not in reported)
        stack_resources = [
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=properties(r),
                urn=r.urn,
                name=r.name,
                options=options(r),
                provider=provider_message(r.provider),
                parent=r.parent or "",
                dependencies=list(r.dependencies),
            )
            for r in resources
        ]
        # One stack policy at a time, in the pack's order (waived-results last), each given the resources of the
        # types its rule reads (all when it names none): pulumi_policy deserializes every resource it is given
        # once per stack policy.
        not_applicable = set()
        reported = set()
        for rule, policy in zip(pack.RULES, pack.POLICIES, strict=True):
            if rule.kind != "stack" or levels[rule.name] == "disabled":
                continue
            chosen = [
                message
                for message, record in zip(stack_resources, resources, strict=True)
                if not rule.resource_types or record.type in rule.resource_types
            ]
            one: Any = _PolicyAnalyzerServicer(pack.PACK_NAME, pack.PACK_VERSION, [policy], EnforcementLevel.ADVISORY)
            one.Configure(request, None)
            response = one.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=chosen), None)
            not_applicable.update(n.policy_name for n in response.not_applicable)
            for diag in response.diagnostics:
                result = convert(diag, None)
                results.append(result)
                reported.add(diag.policyName)
                reported.add(result.policy_name)
        results.extend(passed(n, None) for n in enabled_stack if n not in not_applicable and n not in reported)

    waived_keys = {(r.policy_name, r.resource_urn) for r in results if r.status == "waived"}
    results = [r for r in results if not (r.status == "pass" and (r.policy_name, r.resource_urn) in waived_keys)]

    policies = [
        PolicyInfo(
            name=rule.name,
            rule_id=rule.id,
            title=rule.title,
            description=rule.description,
            severity=rule.severity,
            kind=rule.kind,
            enforcement_level=levels[rule.name],
            config=dict(reconciled[rule.name].properties),
            rationale=rule.rationale,
            remediation=rule.remediation,
            controls={k: list(v) for k, v in rule.controls.items()},
            checkov=tuple(rule.checkov),
        )
        for rule in pack.RULES
    ]
    return PolicyReport(
        pack_name=pack.PACK_NAME,
        pack_version=pack.PACK_VERSION,
        config_source=source,
        environment=environment,
        stack=stack,
        policies=policies,
        results=results,
    )


_INFO_CACHE: dict[int, tuple[list[PolicySchema], dict[str, Any]]] = {}


def _analyzer_info(pack: ModuleType, servicer: Any) -> tuple[list[PolicySchema], dict[str, Any]]:
    """The policies' schemas and the pack's initial config, read once per loaded pack (several stacks share it)."""
    from google.protobuf import empty_pb2, json_format

    cached = _INFO_CACHE.get(id(pack.POLICIES))
    if cached is None:
        info = servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)
        initial = {
            name: {"enforcementLevel": _LEVEL_NAMES[c.enforcementLevel], **json_format.MessageToDict(c.properties)}
            for name, c in info.initialConfig.items()
        }
        cached = _INFO_CACHE[id(pack.POLICIES)] = (_schemas(info), initial)
    return cached


class _TypeServicers:
    """One analyzer per resource type, holding only the resource policies whose rule looks at that type.

    ``pulumi_policy``'s ``Analyze`` deserializes and proxies the properties once per policy; a rule that does not
    look at the type would only answer "not applicable" (``Rule._validate_resource`` checks the type first), so the
    offline driver leaves it out and records it as not applicable itself: the same results for a fraction of the
    work. The Pulumi CLI still calls every policy.
    """

    def __init__(self, pack: ModuleType, request: Any) -> None:
        self._pack = pack
        self._request = request
        self._made: dict[str, tuple[Any, set[str]]] = {}

    def get(self, resource_type: str) -> tuple[Any, set[str]]:
        if resource_type not in self._made:
            from pulumi_policy import EnforcementLevel
            from pulumi_policy.policy import _PolicyAnalyzerServicer

            keep, skipped = [], set()
            for rule, policy in zip(self._pack.RULES, self._pack.POLICIES, strict=True):
                if rule.kind != "resource":
                    continue
                if rule.resource_types and resource_type not in rule.resource_types:
                    skipped.add(rule.name)
                else:
                    keep.append(policy)
            servicer: Any = None
            if keep:
                servicer = _PolicyAnalyzerServicer(
                    self._pack.PACK_NAME, self._pack.PACK_VERSION, keep, EnforcementLevel.ADVISORY
                )
                servicer.Configure(self._request, None)
            self._made[resource_type] = (servicer, skipped)
        return self._made[resource_type]


def reconciled_levels(environment_config: Path | str, pack_dir: Path | None = None) -> dict[str, ReconciledPolicy]:
    """The level and config of every policy for one environment config file (no resources analysed)."""
    from google.protobuf import empty_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    pack = load_pack(pack_dir)
    servicer: Any = _PolicyAnalyzerServicer(
        pack.PACK_NAME, pack.PACK_VERSION, list(pack.POLICIES), EnforcementLevel.ADVISORY
    )
    info = servicer.GetAnalyzerInfo(empty_pb2.Empty(), None)
    schemas = _schemas(info)
    return reconcile(schemas, {}, read_config_file(environment_config), str(environment_config))
