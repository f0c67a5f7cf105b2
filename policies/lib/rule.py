"""Rule metadata and the wrapper that turns a rule into a CrossGuard policy.

A rule is a :class:`Rule`: metadata (stable id, kebab-case policy name, title, severity, rationale,
controls, checkov ids, config schema with defaults) plus a *check*, a pure function that yields
violation messages. :meth:`Rule.policy` builds the ``pulumi_policy`` policy whose ``validate``

* marks the policy not applicable for resource types the rule does not cover (so an offline driver
  can tell a pass from "does not apply");
* fills the policy config with the defaults of the rule's config schema;
* runs the check (an unknown value read during preview raises and the analyzer turns it into an
  advisory "can't run policy" diagnostic: never swallowed here);
* hands the violations to :mod:`policies.lib.waivers`, which reports them, reports them with a note
  that the waiver expired, or records them as waived for the ``waived-results`` policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError

from . import waivers
from .finding import shown

#: Framework names used in :attr:`Rule.controls`.
PSS = "Kubernetes Pod Security Standards (restricted)"
NSA = "NSA/CISA Kubernetes Hardening Guidance"
AKS = "AKS security baseline (Microsoft cloud security benchmark)"
SLM = "slm-deploy availability and governance"

ResourceCheck = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable[str]]
#: A stack check yields ``(urn, message)``; ``urn`` None means the stack as a whole.
StackCheck = Callable[[StackValidationArgs, Mapping[str, Any]], Iterable[tuple[str | None, str]]]

T = TypeVar("T")


def _run(compute: Callable[[], list[T]], stack: bool = False) -> list[T]:
    """Run a check; a bug or an unexpected shape fails closed as a violation instead of crashing
    the analyzer (which would abort the whole preview). Unknown values and not-applicable pass through."""
    try:
        return compute()
    except (UnknownValueError, _NotApplicableError):
        raise
    except Exception as e:
        message = f"the rule could not evaluate this resource: {type(e).__name__}: {e}"
        return [(None, message) if stack else message]  # type: ignore[list-item]


_LEVELS = {
    "advisory": EnforcementLevel.ADVISORY,
    "mandatory": EnforcementLevel.MANDATORY,
    "disabled": EnforcementLevel.DISABLED,
}
_SEVERITIES = {s.value: s for s in Severity}


@dataclass(frozen=True)
class Rule:
    """One policy of the pack and everything the catalogue says about it."""

    id: str
    name: str
    title: str
    severity: Literal["low", "medium", "high", "critical"]
    rationale: str
    remediation: str
    controls: Mapping[str, tuple[str, ...]]
    checkov: tuple[str, ...] = ()
    kind: Literal["resource", "stack"] = "resource"
    #: Resource types the rule looks at (resource rules) or reads of the stack (stack rules: the offline driver
    #: hands it only those); empty means every type.
    resource_types: frozenset[str] = frozenset()
    #: JSON-schema properties of the policy config; each must carry a ``default``.
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_level: Literal["advisory", "mandatory", "disabled"] = "mandatory"
    check: ResourceCheck | StackCheck | None = None
    #: Rules that report on waivers themselves are not subject to waivers.
    waivable: bool = True
    #: What a finding's subject is (``engine flag``, ``Helm value path`` …; see policies.lib.finding), or
    #: ``amount`` (a waiver states maxMonthlyUsd); empty: findings have no subject.
    subject: str = ""

    @property
    def description(self) -> str:
        """The policy description: one line, the first line of every violation message."""
        return f"[{self.id}] {self.title}"

    def config_defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}

    def effective_config(self, configured: Mapping[str, Any]) -> dict[str, Any]:
        values = self.config_defaults()
        values.update({k: v for k, v in configured.items() if k != "enforcementLevel"})
        return values

    def policy(self) -> Policy:
        """The CrossGuard policy for this rule."""
        if self.check is None:
            raise TypeError(f"rule {self.id} has no check")
        schema = PolicyConfigSchema(properties={k: dict(v) for k, v in self.config.items()}) if self.config else None
        common: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "enforcement_level": _LEVELS[self.default_level],
            "config_schema": schema,
            "display_name": self.title,
            "severity": _SEVERITIES[self.severity],
            "tags": [self.id, *self.checkov],
            "remediation_steps": self.remediation,
        }
        if self.kind == "resource":
            return ResourceValidationPolicy(validate=self._validate_resource, **common)
        return StackValidationPolicy(validate=self._validate_stack, **common)

    def _validate_resource(self, args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if self.resource_types and args.resource_type not in self.resource_types:
            args.not_applicable(f"{self.name} does not look at {args.resource_type}")
        check: ResourceCheck = self.check  # type: ignore[assignment]
        messages = _run(lambda: list(check(args, self.effective_config(args.get_config()))))
        if not messages:
            return
        if not self.waivable:
            for message in messages:
                report_violation(shown(message), None)
            return
        waivers.handle_violations(self, args.urn, args.name, messages, report_violation)

    def _validate_stack(self, args: StackValidationArgs, report_violation: ReportViolation) -> None:
        check: StackCheck = self.check  # type: ignore[assignment]
        found = _run(lambda: list(check(args, self.effective_config(args.get_config()))), stack=True)
        if not self.waivable:
            for urn, message in found:
                report_violation(shown(message), urn)
            return
        names = {r.urn: r.name for r in args.resources}
        by_urn: dict[str | None, list[str]] = {}
        for urn, message in found:
            by_urn.setdefault(urn, []).append(message)
        for urn, messages in by_urn.items():
            name = names.get(urn, "") if urn else ""
            waivers.handle_violations(self, urn, name, messages, report_violation)
