"""SLM-K8S-004: containers run as a non-root user."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, effective, pod_template
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        if effective(c, pod.spec, "runAsNonRoot") is not True:
            yield f"{c.label}: runAsNonRoot is not true (set it on the pod or the container)"
        user = effective(c, pod.spec, "runAsUser")
        if user is not None and float(user) == 0:
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
