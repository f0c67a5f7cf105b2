"""SLM-K8S-011: GPU limits equal GPU requests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, gpu_resources, pod_template
from ...lib.rule import SLM, Rule

LISTS = ("initContainers", "containers")


def _quantity(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec, LISTS):
        for gpu in gpu_resources(c.body):
            requested = get(c.body, "resources", "requests", gpu)
            if requested is None:
                continue  # Kubernetes takes a request from the limit: only the limit is set
            limit = get(c.body, "resources", "limits", gpu)
            if limit is None:
                yield f"{c.label}: requests {gpu}={requested} without a limit"
            elif _quantity(limit) != _quantity(requested):
                yield f"{c.label}: {gpu} limit {limit} differs from request {requested}"


RULE = Rule(
    id="SLM-K8S-011",
    name="gpu-limits-match-requests",
    title="GPU limits must equal GPU requests",
    severity="medium",
    rationale=(
        "Extended resources cannot be overcommitted: the API server rejects a GPU request without an equal limit."
    ),
    remediation="Set resources.limits for the GPU resource (nvidia.com/gpu, a MIG or time slice, amd.com/gpu) to the "
    "same value as the request.",
    controls={SLM: ("GPU scheduling",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
