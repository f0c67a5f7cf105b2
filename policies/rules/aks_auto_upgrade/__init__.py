"""SLM-AKS-005: automatic cluster and node OS upgrades."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.aks import MANAGED_CLUSTER
from ...lib.k8s import get
from ...lib.rule import AKS, NSA, Rule

OFF = frozenset({"none", "unmanaged"})


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for field in ("upgradeChannel", "nodeOSUpgradeChannel"):
        value = get(args.props, "autoUpgradeProfile", field)
        if not value or str(value).lower() in OFF:
            shown = "not set" if not value else f"'{value}'"
            yield f"autoUpgradeProfile.{field} is {shown}"


RULE = Rule(
    id="SLM-AKS-005",
    name="aks-auto-upgrade",
    title="AKS must upgrade the cluster and node OS automatically",
    severity="medium",
    rationale="Clusters left on old patch versions and node images keep known vulnerabilities.",
    remediation=(
        "Set autoUpgradeProfile.upgradeChannel (e.g. patch or stable) and nodeOSUpgradeChannel (e.g. NodeImage)."
    ),
    controls={
        AKS: ("PV-6: rapidly and automatically remediate vulnerabilities",),
        NSA: ("Upgrading and application security practices",),
    },
    resource_types=frozenset({MANAGED_CLUSTER}),
    check=check,
)
