"""SLM-K8S-005: a seccomp profile (RuntimeDefault or Localhost) on every container."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, effective, pod_template
from ...lib.rule import NSA, PSS, Rule

ALLOWED = ("RuntimeDefault", "Localhost")


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        profile = effective(c, pod.spec, "seccompProfile", "type")
        if profile not in ALLOWED:
            shown = "not set" if profile is None else repr(profile)
            yield f"{c.label}: seccompProfile.type is {shown}; use RuntimeDefault or Localhost"


RULE = Rule(
    id="SLM-K8S-005",
    name="seccomp-profile",
    title="Pods must use the RuntimeDefault or a Localhost seccomp profile",
    severity="medium",
    rationale=(
        "Unconfined containers can call every system call, including the rarely used ones behind most kernel exploits."
    ),
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
    controls={PSS: ("restricted: Seccomp", "baseline: Seccomp"), NSA: ("Pod security enhancements",)},
    checkov=("CKV_K8S_31",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
