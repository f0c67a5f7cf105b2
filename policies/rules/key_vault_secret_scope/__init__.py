"""SLM-AKS-008: a workload identity reads only the Key Vault secrets it uses, not the whole vault.

Key Vault's RBAC roles can be assigned on a single secret (``…/vaults/<vault>/secrets/<name>``). A data
role on the vault, its resource group or the subscription lets one model read every other model's
tokens and keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import get
from ...lib.rule import AKS, NSA, Rule

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
#: Built-in Key Vault data-plane roles that read secret values.
SECRET_READING_ROLES = {
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    role = str(get(args.props, "roleDefinitionId", default="")).rsplit("/", 1)[-1].lower()
    if role not in SECRET_READING_ROLES:
        return
    scope = str(get(args.props, "scope", default=""))
    if "/secrets/" not in scope.lower():
        yield (
            f"{SECRET_READING_ROLES[role]} is granted on {scope or 'an unset scope'}: every secret below it is "
            "readable; grant it on each secret the identity uses (…/vaults/<vault>/secrets/<name>)"
        )


RULE = Rule(
    id="SLM-AKS-008",
    name="key-vault-secret-scope",
    title="Key Vault read access must be granted per secret, not on the vault",
    severity="high",
    rationale="One model's identity should not read another model's tokens; least privilege per secret.",
    remediation="Assign the Key Vault Secrets User role on each secret the workload identity reads.",
    controls={
        AKS: ("PA-7: follow just enough administration (least privilege)",),
        NSA: ("Authentication and authorization",),
    },
    resource_types=frozenset({ROLE_ASSIGNMENT}),
    check=check,
)
