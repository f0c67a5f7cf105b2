"""SLM-AKS-002: private API server or authorized IP ranges."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import MANAGED_CLUSTER
from ...lib.k8s import get, items
from ...lib.rule import AKS, NSA, Rule

OPEN = frozenset({"0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "*"})


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    access = get(args.props, "apiServerAccessProfile", default={})
    if get(access, "enablePrivateCluster") is True:
        return
    ranges = [str(r) for r in items(get(access, "authorizedIPRanges"))]
    if not ranges:
        yield "the API server is public to the internet: enable a private cluster or set authorizedIPRanges"
    elif OPEN & set(ranges):
        yield f"authorizedIPRanges {', '.join(sorted(OPEN & set(ranges)))} opens the API server to the internet"


RULE = Rule(
    id="SLM-AKS-002",
    name="aks-api-server-access",
    title="The AKS API server must be private or limited to authorized IP ranges",
    severity="high",
    rationale=(
        "A control plane reachable from anywhere is exposed to credential stuffing and to any API server vulnerability."
    ),
    remediation="Set apiServerAccessProfile.enablePrivateCluster: true or authorizedIPRanges to your admin networks.",
    controls={AKS: ("NS-2: secure cloud services with network controls",), NSA: ("Control plane hardening",)},
    checkov=("CKV_AZURE_6", "CKV_AZURE_115"),
    resource_types=frozenset({MANAGED_CLUSTER}),
    check=check,
)
