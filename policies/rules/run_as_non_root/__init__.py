"""SLM-K8S-004: containers run as a non-root user (runAsNonRoot: true, runAsUser not 0)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import NSA, PSS, Rule


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _is_root(user: Any) -> bool:
    return user is not None and float(user) == 0


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    # Both levels are restricted fields: an explicit false (or 0) on the pod fails even where every
    # container overrides it, as Pod Security Admission rules.
    pod_non_root = get(pod.spec, "securityContext", "runAsNonRoot")
    if pod_non_root is not None and pod_non_root is not True:
        yield f"pod securityContext.runAsNonRoot is {_shown(pod_non_root)}; it must be true"
    if _is_root(get(pod.spec, "securityContext", "runAsUser")):
        yield "pod securityContext.runAsUser is 0 (root)"
    for c in containers(pod.spec):
        non_root = get(c.body, "securityContext", "runAsNonRoot")
        if non_root is None and pod_non_root is not True:
            yield f"{c.label}: runAsNonRoot is not true (set it on the pod or the container)"
        elif non_root is not None and non_root is not True:
            yield f"{c.label}: runAsNonRoot is {_shown(non_root)}; it must be true"
        if _is_root(get(c.body, "securityContext", "runAsUser")):
            yield f"{c.label}: runAsUser is 0 (root)"


RULE = Rule(
    id="SLM-K8S-004",
    name="run-as-non-root",
    title="Containers must run as non-root (runAsNonRoot: true, runAsUser not 0)",
    severity="high",
    rationale=(
        "Root in a container is root on the node after any container escape; most model servers run fine as a "
        "normal user."
    ),
    remediation="Set securityContext.runAsNonRoot: true and a non-zero runAsUser (pod or container level).",
    controls={
        PSS: ("restricted: Running as Non-root", "restricted: Running as Non-root user"),
        NSA: ("Pod security: non-root containers and rootless container engines",),
    },
    checkov=("CKV_K8S_23", "CKV_K8S_40"),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
