"""SLM-K8S-010: CPU and memory requests and limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import NSA, Rule

#: Ephemeral containers cannot declare resources.
LISTS = ("initContainers", "containers")


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec, LISTS):
        missing = [
            f"{kind}.{resource}"
            for kind in ("requests", "limits")
            for resource in ("cpu", "memory")
            if get(c.body, "resources", kind, resource) in (None, "")
        ]
        if missing:
            yield f"{c.label}: resources {', '.join(missing)} not set"


RULE = Rule(
    id="SLM-K8S-010",
    name="resource-requests-limits",
    title="Containers must set CPU and memory requests and limits",
    severity="medium",
    rationale=(
        "Without requests the scheduler overcommits nodes; without limits one model server can starve its neighbours."
    ),
    remediation="Set resources.requests and resources.limits for cpu and memory on every container.",
    controls={NSA: ("Network separation and hardening: resource policies",)},
    checkov=("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
