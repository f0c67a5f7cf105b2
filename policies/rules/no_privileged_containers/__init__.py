"""SLM-K8S-001: no privileged containers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        if get(c.body, "securityContext", "privileged") is True:
            yield f"{c.label} sets securityContext.privileged: true"


RULE = Rule(
    id="SLM-K8S-001",
    name="no-privileged-containers",
    title="Containers must not run privileged",
    severity="critical",
    rationale="A privileged container has every capability and all host devices: it is root on the node.",
    remediation="Remove securityContext.privileged (or set it to false); GPUs come from the device plugin.",
    controls={PSS: ("baseline: Privileged Containers",), NSA: ("Pod security: non-root and unprivileged containers",)},
    checkov=("CKV_K8S_16",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
