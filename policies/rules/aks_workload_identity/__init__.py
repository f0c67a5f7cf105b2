"""SLM-AKS-003: OIDC issuer and workload identity."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import MANAGED_CLUSTER
from ...lib.k8s import get
from ...lib.rule import AKS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if get(args.props, "oidcIssuerProfile", "enabled") is not True:
        yield "oidcIssuerProfile.enabled is not true"
    if get(args.props, "securityProfile", "workloadIdentity", "enabled") is not True:
        yield "securityProfile.workloadIdentity.enabled is not true"


RULE = Rule(
    id="SLM-AKS-003",
    name="aks-workload-identity",
    title="AKS must enable the OIDC issuer and workload identity",
    severity="medium",
    rationale="Workload identity gives pods short-lived Entra tokens instead of stored secrets for Azure access.",
    remediation="Set oidcIssuerProfile.enabled: true and securityProfile.workloadIdentity.enabled: true.",
    controls={AKS: ("IM-3: manage application identities securely and automatically",)},
    resource_types=frozenset({MANAGED_CLUSTER}),
    check=check,
)
