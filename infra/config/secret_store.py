"""Where secret values live and how pods receive them (`secretStore:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import ConfigModel


class KeyVaultConfig(ConfigModel):
    """An existing Azure Key Vault (RBAC authorization) that holds the stack's secrets."""

    name: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", description="Vault name.")
    resource_group: str = Field(min_length=1, description="Resource group of the vault.")
    location: str = Field(min_length=1, description="Azure region for the workload identities.")


class SecretStoreConfig(ConfigModel):
    """Where secret values live and how pods receive them (never as literal environment values)."""

    backend: Literal["kubernetes", "azure-keyvault"] = Field(
        "kubernetes",
        description="`kubernetes`: a Secret made from the Pulumi secret; `azure-keyvault`: Key Vault, mounted "
        "through the Secrets Store CSI driver with workload identity.",
    )
    key_vault: KeyVaultConfig | None = Field(None, description="The vault, for the azure-keyvault backend.")
    oidc_issuer_url: str | None = Field(
        None,
        pattern=r"^https://",
        description="The cluster's OIDC issuer, for workload identity federation (azure-keyvault backend); "
        "taken from the AKS cluster in `aks` mode.",
    )

    @model_validator(mode="after")
    def _backend_settings(self) -> SecretStoreConfig:
        if self.backend == "azure-keyvault":
            if self.key_vault is None:
                raise ValueError("backend 'azure-keyvault' needs keyVault (name, resourceGroup, location)")
        elif self.key_vault is not None or self.oidc_issuer_url is not None:
            raise ValueError("keyVault and oidcIssuerUrl are for backend 'azure-keyvault' only")
        return self
