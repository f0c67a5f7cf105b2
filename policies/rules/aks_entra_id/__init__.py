"""SLM-AKS-001: Entra ID authentication with Azure RBAC and no local accounts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import MANAGED_CLUSTER
from ...lib.k8s import get
from ...lib.rule import AKS, NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if get(args.props, "aadProfile", "managed") is not True:
        yield "aadProfile.managed is not true (Entra ID integration)"
    if get(args.props, "aadProfile", "enableAzureRBAC") is not True:
        yield "aadProfile.enableAzureRBAC is not true"
    if get(args.props, "disableLocalAccounts") is not True:
        yield "disableLocalAccounts is not true (static admin credentials stay available)"


RULE = Rule(
    id="SLM-AKS-001",
    name="aks-entra-id",
    title="AKS must use Entra ID with Azure RBAC and disable local accounts",
    severity="high",
    rationale="Local accounts are shared static credentials that bypass Entra ID, conditional access and auditing.",
    remediation="Set aadProfile {managed: true, enableAzureRBAC: true} and disableLocalAccounts: true.",
    controls={
        AKS: ("IM-1: centralized identity and authentication", "PA-7: least privilege"),
        NSA: ("Authentication and authorization",),
    },
    checkov=("CKV_AZURE_5", "CKV_AZURE_141"),
    resource_types=frozenset({MANAGED_CLUSTER}),
    check=check,
)
