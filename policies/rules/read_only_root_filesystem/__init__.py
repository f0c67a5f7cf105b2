"""SLM-K8S-009: read-only root file system."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        if get(c.body, "securityContext", "readOnlyRootFilesystem") is not True:
            yield f"{c.label}: securityContext.readOnlyRootFilesystem is not true"


RULE = Rule(
    id="SLM-K8S-009",
    name="read-only-root-filesystem",
    title="Containers must have a read-only root file system",
    severity="medium",
    rationale=(
        "An immutable image file system stops an attacker from persisting tools or changing the model server's code."
    ),
    remediation="Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes for caches and /tmp.",
    controls={NSA: ("Pod security: immutable container file systems",)},
    checkov=("CKV_K8S_22",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
