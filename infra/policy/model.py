"""Typed results of a policy pack run (what every report renderer reads)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Level = Literal["advisory", "mandatory", "disabled", "remediate"]
Status = Literal["pass", "violation", "waived", "not-run"]
Severity = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True)
class WaiverInfo:
    """The waiver behind a waived result, or the expired waiver noted on a violation."""

    policy: str
    resource: str
    reason: str
    owner: str
    expires: str
    expired: bool = False
    #: What the waiver covers: the finding subjects it names, or the amount it allows.
    covers: str = ""


@dataclass(frozen=True)
class PolicyInfo:
    """One policy of the pack with the level and config it ran with."""

    name: str
    rule_id: str
    title: str
    description: str
    severity: Severity
    kind: Literal["resource", "stack"]
    enforcement_level: Level
    config: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    remediation: str = ""
    controls: dict[str, list[str]] = field(default_factory=dict)
    checkov: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyResult:
    """One outcome of one policy on one resource (``resource_urn`` None: the stack as a whole)."""

    policy_name: str
    rule_id: str
    title: str
    severity: Severity
    enforcement_level: Level
    status: Status
    message: str
    resource_urn: str | None = None
    resource_name: str | None = None
    resource_type: str | None = None
    waiver: WaiverInfo | None = None
    #: The stack the result is about (set when reports of several stacks are merged, and by ``check``).
    stack: str | None = None

    @property
    def blocking(self) -> bool:
        return self.status == "violation" and self.enforcement_level in ("mandatory", "remediate")


@dataclass
class PolicyReport:
    """Everything one run of the pack found, plus the policies and levels it ran with.

    ``environment`` is what the stack file declares; ``level`` is the level the stack is bound to
    (by its name: see :func:`infra.policy.pack_config.bind_level`) and ``binding`` says why.
    """

    pack_name: str
    pack_version: str
    config_source: str
    environment: str | None
    stack: str | None
    policies: list[PolicyInfo]
    results: list[PolicyResult]
    level: str | None = None
    binding: str | None = None

    def named(self) -> PolicyReport:
        """A copy whose every result names this report's stack (:attr:`PolicyResult.stack`)."""
        if self.stack is None or all(r.stack == self.stack for r in self.results):
            return self
        return replace(self, results=[replace(r, stack=self.stack) for r in self.results])

    def _with(self, status: Status) -> list[PolicyResult]:
        return [r for r in self.results if r.status == status]

    @property
    def violations(self) -> list[PolicyResult]:
        return self._with("violation")

    @property
    def waived(self) -> list[PolicyResult]:
        return self._with("waived")

    @property
    def not_run(self) -> list[PolicyResult]:
        return self._with("not-run")

    @property
    def passes(self) -> list[PolicyResult]:
        return self._with("pass")

    @property
    def not_evaluated(self) -> list[tuple[PolicyInfo, str]]:
        """Policies that judged nothing in this run, each with why: disabled at this level, or nothing in
        the stack is of the kinds they check (AKS rules on a stack that brings its own cluster …)."""
        judged = {r.policy_name for r in self.results}
        found = []
        for policy in self.policies:
            if policy.enforcement_level == "disabled":
                found.append((policy, "disabled at this level"))
            elif policy.name not in judged:
                found.append((policy, "nothing in this stack it applies to"))
        return found

    @property
    def mandatory_violations(self) -> int:
        return sum(1 for r in self.results if r.blocking)

    @property
    def advisory_violations(self) -> int:
        return sum(1 for r in self.results if r.status == "violation" and not r.blocking)

    @property
    def ok(self) -> bool:
        return self.mandatory_violations == 0

    def policy(self, name: str) -> PolicyInfo | None:
        return next((p for p in self.policies if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": {"name": self.pack_name, "version": self.pack_version},
            "configSource": self.config_source,
            "environment": self.environment,
            "stack": self.stack,
            "level": self.level,
            "binding": self.binding,
            "summary": {
                "mandatoryViolations": self.mandatory_violations,
                "advisoryViolations": self.advisory_violations,
                "waived": len(self.waived),
                "notRun": len(self.not_run),
                "passed": len(self.passes),
                "notEvaluated": len(self.not_evaluated),
                "ok": self.ok,
            },
            # camelCase as every JSON output; the values (policy config, controls) keep the keys they were given.
            "policies": [_camel_fields(p) for p in self.policies],
            "notEvaluated": [
                {"policy": policy.name, "ruleId": policy.rule_id, "reason": reason}
                for policy, reason in self.not_evaluated
            ],
            "results": [_camel_fields(r) for r in self.results],
        }


def _camel_fields(record: Any) -> dict[str, Any]:
    """A data class as a JSON object: its field names in camelCase, its values as they are."""
    from infra.json_keys import camel

    return {camel(key): value for key, value in asdict(record).items()}
