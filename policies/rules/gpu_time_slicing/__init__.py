"""SLM-GPU-001: no model server on a time-sliced GPU where the environment forbids it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import TIME_SLICED_GPU, WORKLOAD_TYPES, containers, gpu_resources, pod_template
from ...lib.rule import SLM, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    found = containers(pod.spec) if pod is not None else []
    shared = [c for c in found if TIME_SLICED_GPU in gpu_resources(c.body)]
    if not shared:
        args.not_applicable(f"no container requests {TIME_SLICED_GPU}")
    if config.get("allowTimeSlicing", True) is True:
        return
    for container in shared:
        yield (
            f"{container.label} requests {TIME_SLICED_GPU}, a time slice of a GPU other pods use too: no memory or "
            "fault isolation, which this environment does not allow"
        )


RULE = Rule(
    id="SLM-GPU-001",
    name="gpu-time-slicing",
    title="Model servers must not run on time-sliced GPUs where the environment forbids it",
    severity="high",
    rationale=(
        "Time-slicing gives every pod on a GPU the whole card: nothing isolates memory, so one server that grows "
        "past its share (a longer context, an engine without a memory cap) makes its neighbours fail with CUDA "
        "out-of-memory errors, and a GPU fault takes them all down. MIG slices have their own memory and faults."
    ),
    remediation=(
        "Use whole GPUs or MIG slices (sharing mode none or mig on the pool) in this environment, or set "
        "allowTimeSlicing: true for it."
    ),
    controls={SLM: ("Availability: fault isolation", "GPU scheduling")},
    resource_types=WORKLOAD_TYPES,
    config={
        "allowTimeSlicing": {
            "type": "boolean",
            "default": True,
            "description": "Allow pods that request time-sliced GPUs (nvidia.com/gpu.shared).",
        }
    },
    check=check,
)
