"""SLM-AKS-007: no spot GPU pools where the environment forbids them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import AGENT_POOL, MANAGED_CLUSTER, is_gpu_size, pools
from ...lib.k8s import get
from ...lib.rule import SLM, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    gpu_pools = [p for p in pools(args.resource_type, args.props, args.name) if is_gpu_size(get(p.body, "vmSize"))]
    if not gpu_pools:
        args.not_applicable("no GPU node pool")
    if config.get("allowSpot", True) is True:
        return
    for pool in gpu_pools:
        if str(get(pool.body, "scaleSetPriority", default="Regular")).lower() == "spot":
            yield f"{pool.label} ({get(pool.body, 'vmSize')}) uses spot VMs, which this environment does not allow"


RULE = Rule(
    id="SLM-AKS-007",
    name="aks-no-spot-gpu",
    title="GPU node pools must not use spot VMs where the environment forbids them",
    severity="medium",
    rationale="Spot VMs can be evicted at any time with 30 seconds notice: fine for dev, an outage in production.",
    remediation="Use scaleSetPriority Regular for production GPU pools, or set allowSpot: true for the environment.",
    controls={SLM: ("Availability: capacity guarantees",)},
    resource_types=frozenset({AGENT_POOL, MANAGED_CLUSTER}),
    config={"allowSpot": {"type": "boolean", "default": True, "description": "Allow spot GPU node pools."}},
    check=check,
)
