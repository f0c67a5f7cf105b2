"""SLM-K8S-005: a seccomp profile (RuntimeDefault or Localhost) on every container, never Unconfined.

Pod Security Standards baseline refuses ``Unconfined`` at the pod and on every container; restricted also
refuses a container left without a profile (none of its own and none on the pod).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, is_windows, pod_template
from ...lib.pss import SECCOMP_TYPES
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    if is_windows(pod.spec):
        # Linux-only control (v1.25+): the API forbids seccompProfile on a pod with spec.os.name: windows.
        return
    pod_profile = get(pod.spec, "securityContext", "seccompProfile", "type")
    if pod_profile is not None and pod_profile not in SECCOMP_TYPES:
        yield f"pod securityContext.seccompProfile.type is {pod_profile!r}; use RuntimeDefault or Localhost"
    for c in containers(pod.spec):
        profile = get(c.body, "securityContext", "seccompProfile", "type")
        if profile is not None and profile not in SECCOMP_TYPES:
            yield f"{c.label}: seccompProfile.type is {profile!r}; use RuntimeDefault or Localhost"
        elif profile is None and pod_profile is None:
            yield f"{c.label}: seccompProfile.type is not set (on the container or the pod); use RuntimeDefault"


RULE = Rule(
    id="SLM-K8S-005",
    name="seccomp-profile",
    title="Pods must use the RuntimeDefault or a Localhost seccomp profile",
    severity="medium",
    rationale=(
        "Unconfined containers can call every system call, including the rarely used ones behind most kernel exploits."
    ),
    remediation="Set securityContext.seccompProfile.type: RuntimeDefault on the pod and remove any Unconfined.",
    controls={PSS: ("restricted: Seccomp", "baseline: Seccomp"), NSA: ("Pod security enhancements",)},
    checkov=("CKV_K8S_31",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
