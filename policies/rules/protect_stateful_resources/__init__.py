"""SLM-AVL-004: stateful resources are protected from deletion."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import PVC
from ...lib.rule import AKS, SLM, Rule

STATEFUL_TYPES = frozenset(
    {
        PVC,
        "azure-native:containerservice:ManagedCluster",
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
    }
)


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if not args.opts.protect:
        yield f"{args.resource_type.rsplit(':', 1)[-1]} holds state but is not protected (resource option protect=True)"


RULE = Rule(
    id="SLM-AVL-004",
    name="protect-stateful-resources",
    title="Stateful resources must be protected from deletion",
    severity="high",
    rationale=(
        "Deleting a cluster, a model cache volume, a storage account or a key vault by a refactor loses data and "
        "hours of downloads."
    ),
    remediation="Create the resource with ResourceOptions(protect=True).",
    controls={SLM: ("Availability: data protection",), AKS: ("BR-1: backup and recovery",)},
    resource_types=STATEFUL_TYPES,
    check=check,
)
