"""SLM-AKS-009: node auto-provisioning only with limits on what Karpenter may buy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import MANAGED_CLUSTER
from ...lib.k8s import get, is_map
from ...lib.rule import SLM, Rule

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if args.resource_type == MANAGED_CLUSTER:
        profile = get(args.props, "nodeProvisioningProfile")
        if not is_map(profile) or str(get(profile, "mode", default="Manual")).lower() != "auto":
            args.not_applicable("node auto-provisioning is off")
        # AKS's default is Auto: its own NodePools, whose limits the stack neither sets nor sees.
        if str(get(profile, "defaultNodePools", default="Auto")).lower() != "none":
            yield (
                "node auto-provisioning runs AKS's default NodePools (defaultNodePools is not None), which have no "
                "limits this stack sets: Karpenter may add nodes without bound"
            )
        return
    limits = get(args.props, "spec", "limits")
    if not is_map(limits) or not limits:
        yield "NodePool has no spec.limits: Karpenter may add nodes (and GPUs) without bound"


RULE = Rule(
    id="SLM-AKS-009",
    name="aks-node-provisioning-limits",
    title="Node auto-provisioning must be bounded by NodePool limits",
    severity="high",
    rationale=(
        "With node auto-provisioning, Karpenter buys a VM for every pod that waits: without limits a runaway "
        "replica count, a crash loop of new pods or a misconfigured autoscaler buys GPU VMs without bound, and the "
        "cost estimate has no maximum."
    ),
    remediation=(
        "Set spec.limits (e.g. nvidia.com/gpu) on every NodePool and defaultNodePools: None on the cluster "
        "(slm-deploy derives the limit from the GPU pool's maxCount)."
    ),
    controls={SLM: ("Cost: bounded capacity", "Availability: capacity guarantees")},
    resource_types=frozenset({MANAGED_CLUSTER, NODE_POOL}),
    check=check,
)
