"""SLM-AKS-006: GPU node pools are tainted so that only GPU workloads land there."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import AGENT_POOL, MANAGED_CLUSTER, is_gpu_size, pools
from ...lib.k8s import get, items
from ...lib.rule import SLM, Rule

EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    gpu_pools = [p for p in pools(args.resource_type, args.props, args.name) if is_gpu_size(get(p.body, "vmSize"))]
    if not gpu_pools:
        args.not_applicable("no GPU node pool")
    for pool in gpu_pools:
        taints = [str(t) for t in items(get(pool.body, "nodeTaints"))]
        if not any(t.rpartition(":")[2] in EFFECTS for t in taints):
            yield f"{pool.label} ({get(pool.body, 'vmSize')}) has no NoSchedule taint such as sku=gpu:NoSchedule"


RULE = Rule(
    id="SLM-AKS-006",
    name="aks-gpu-pool-taint",
    title="GPU node pools must carry a NoSchedule taint",
    severity="medium",
    rationale=(
        "Untainted GPU nodes fill up with ordinary pods, leaving expensive GPUs without room for the model servers."
    ),
    remediation="Add nodeTaints: ['sku=gpu:NoSchedule'] to the pool and a matching toleration to GPU workloads.",
    controls={SLM: ("GPU scheduling",)},
    resource_types=frozenset({AGENT_POOL, MANAGED_CLUSTER}),
    check=check,
)
