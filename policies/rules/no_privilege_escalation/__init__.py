"""SLM-K8S-002: allowPrivilegeEscalation must be explicitly false."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, is_windows, pod_template
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    if is_windows(pod.spec):
        # Linux-only control (v1.25+): the API forbids the field on a pod with spec.os.name: windows.
        return
    for c in containers(pod.spec):
        value = get(c.body, "securityContext", "allowPrivilegeEscalation")
        if value is not False:
            shown = "is not set" if value is None else f"is {value!r}"
            yield f"{c.label}: securityContext.allowPrivilegeEscalation {shown}; it must be false"


RULE = Rule(
    id="SLM-K8S-002",
    name="no-privilege-escalation",
    title="Containers must set allowPrivilegeEscalation: false",
    severity="high",
    rationale="Without no_new_privs a process can gain privileges through setuid binaries or file capabilities.",
    remediation="Set securityContext.allowPrivilegeEscalation: false on every container.",
    controls={PSS: ("restricted: Privilege Escalation",), NSA: ("Pod security: non-root and unprivileged containers",)},
    checkov=("CKV_K8S_20",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
