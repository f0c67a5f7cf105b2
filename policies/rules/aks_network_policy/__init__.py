"""SLM-AKS-004: a network policy engine."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import MANAGED_CLUSTER
from ...lib.k8s import get
from ...lib.rule import AKS, NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    engine = get(args.props, "networkProfile", "networkPolicy")
    if not engine or str(engine).lower() == "none":
        yield "networkProfile.networkPolicy is not set: NetworkPolicies would not be enforced"


RULE = Rule(
    id="SLM-AKS-004",
    name="aks-network-policy",
    title="AKS must run a network policy engine",
    severity="high",
    rationale="Without a network policy engine every NetworkPolicy, including default deny, is silently ignored.",
    remediation="Set networkProfile.networkPolicy (cilium with the Azure CNI powered by Cilium, or azure/calico).",
    controls={AKS: ("NS-1: network segmentation",), NSA: ("Network separation and hardening: network policies",)},
    checkov=("CKV_AZURE_7",),
    resource_types=frozenset({MANAGED_CLUSTER}),
    check=check,
)
