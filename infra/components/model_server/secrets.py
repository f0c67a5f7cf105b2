"""Secret values for one model: stored by the configured backend, handed to pods only by reference.

Two backends, one interface (:class:`SecretWiring`) the model server consumes:

- ``kubernetes``: a Secret created from the Pulumi secret (the value stays a Pulumi secret output);
  containers read it through ``secretKeyRef``.
- ``azure-keyvault``: the value is written to an existing Key Vault; a user-assigned identity,
  federated with the model's ServiceAccount (AKS workload identity), may read it; the Secrets Store
  CSI driver mounts it as a file through a ``SecretProviderClass``. Nothing is stored in etcd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    CSIVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    SecretKeySelectorArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from infra.config.objects import SECRETS_SUFFIX, key_vault_secret_name
from infra.config.secret_store import SecretStoreConfig

#: Built-in Azure role "Key Vault Secrets User": read secret contents, nothing else.
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"
CSI_DRIVER = "secrets-store.csi.k8s.io"
MOUNT_PATH = "/var/run/secrets/slm-deploy"
VOLUME = "secrets"


@dataclass
class SecretWiring:
    """How a pod receives the model's secrets: env references, volumes, identity labels/annotations."""

    env: list[EnvVarArgs] = field(default_factory=list)
    volumes: list[VolumeArgs] = field(default_factory=list)
    volume_mounts: list[VolumeMountArgs] = field(default_factory=list)
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelSecretsArgs:
    #: Names the Kubernetes and Azure objects (the model name).
    model: str
    #: The model's namespace (an output of the Namespace, so that objects wait for it).
    namespace: pulumi.Input[str]
    service_account: str
    #: Variables that carry a secret's value (``HF_TOKEN`` → ``hfToken``), for the kubernetes backend.
    env: Mapping[str, str]
    #: Variables that carry the path of a mounted secret file (``HF_TOKEN_PATH`` → ``hfToken``), used
    #: where the value is only available as a file (azure-keyvault).
    file_env: Mapping[str, str]
    #: Secret values by config name (Pulumi secret outputs).
    values: Mapping[str, pulumi.Input[str]]
    store: SecretStoreConfig
    #: The cluster's OIDC issuer (from the AKS cluster, or the store's config for an existing cluster).
    oidc_issuer: pulumi.Input[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class ModelSecrets(pulumi.ComponentResource):
    """The secrets of one model in the configured backend, and how its pods reference them."""

    secret: k8s.core.v1.Secret | None
    # Azure resources typed loosely: the Azure SDK is imported only by stacks that use Key Vault, and
    # the Pulumi SDK resolves these annotations at run time.
    identity: pulumi.CustomResource | None
    federated_credential: pulumi.CustomResource | None
    vault_secrets: dict[str, pulumi.CustomResource]
    #: One read grant per secret the model uses.
    role_assignments: dict[str, pulumi.CustomResource]
    provider_class: k8s.apiextensions.CustomResource | None
    wiring: SecretWiring

    def __init__(self, name: str, args: ModelSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("slm-deploy:secrets:ModelSecrets", name, None, opts)
        self.secret = None
        self.identity = None
        self.federated_credential = None
        self.vault_secrets = {}
        self.role_assignments = {}
        self.provider_class = None
        needed = sorted({*args.env.values(), *args.file_env.values()})
        if not needed:
            self.wiring = SecretWiring()
        elif args.store.backend == "kubernetes":
            self.wiring = self._kubernetes(name, args, needed)
        else:
            self.wiring = self._key_vault(name, args, needed)
        self.register_outputs({"backend": args.store.backend, "secrets": needed})

    def _kubernetes(self, name: str, args: ModelSecretsArgs, needed: list[str]) -> SecretWiring:
        secret_name = f"{args.model}{SECRETS_SUFFIX}"
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=ObjectMetaArgs(name=secret_name, namespace=args.namespace, labels=args.labels),
            type="Opaque",
            string_data={key: pulumi.Output.secret(args.values[key]) for key in needed},
            opts=pulumi.ResourceOptions(parent=self),
        )
        wiring = SecretWiring(
            env=[
                EnvVarArgs(
                    name=variable,
                    value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(name=secret_name, key=key)),
                )
                for variable, key in sorted(args.env.items())
            ]
        )
        if args.file_env and not args.env:
            wiring.volumes.append(
                VolumeArgs(
                    name=VOLUME,
                    secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=secret_name, default_mode=0o440),
                )
            )
            wiring.volume_mounts.append(VolumeMountArgs(name=VOLUME, mount_path=MOUNT_PATH, read_only=True))
            wiring.env += _file_env(args.file_env)
        return wiring

    def _key_vault(self, name: str, args: ModelSecretsArgs, needed: list[str]) -> SecretWiring:
        from pulumi_azure_native import authorization, keyvault, managedidentity

        vault = args.store.key_vault
        issuer = args.oidc_issuer or args.store.oidc_issuer_url
        assert vault is not None and issuer is not None  # the config model guarantees both
        child = pulumi.ResourceOptions(parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_group_name=vault.resource_group,
            resource_name_=f"id-slm-{args.model}",
            location=vault.location,
            tags=args.tags,
            opts=child,
        )
        self.federated_credential = managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            resource_group_name=vault.resource_group,
            resource_name_=self.identity.name,
            federated_identity_credential_resource_name=pulumi.Output.concat(args.namespace, "-", args.service_account),
            issuer=issuer,
            subject=pulumi.Output.concat("system:serviceaccount:", args.namespace, ":", args.service_account),
            audiences=[WORKLOAD_IDENTITY_AUDIENCE],
            opts=child,
        )
        for key in needed:
            self.vault_secrets[key] = keyvault.Secret(
                f"{name}-{key.lower()}",
                resource_group_name=vault.resource_group,
                vault_name=vault.name,
                secret_name=key_vault_secret_name(args.model, key),
                properties=keyvault.SecretPropertiesArgs(value=pulumi.Output.secret(args.values[key])),
                tags=args.tags,
                opts=child,
            )
        vault_id = client.subscription_id.apply(
            lambda sub: (
                f"/subscriptions/{sub}/resourceGroups/{vault.resource_group}"
                f"/providers/Microsoft.KeyVault/vaults/{vault.name}"
            )
        )
        role = client.subscription_id.apply(
            lambda sub: (
                f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{KEY_VAULT_SECRETS_USER}"
            )
        )
        # Read on each secret the model uses, never on the whole vault (Key Vault RBAC scopes down to a secret).
        for key in needed:
            secret_name = key_vault_secret_name(args.model, key)
            self.role_assignments[key] = authorization.RoleAssignment(
                f"{name}-reader-{key.lower()}",
                principal_id=self.identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=role,
                scope=pulumi.Output.concat(vault_id, "/secrets/", secret_name),
                description=f"slm-deploy: {args.model} reads its secret {key}",
                opts=child,
            )
        class_name = f"{args.model}{SECRETS_SUFFIX}"
        objects = "array:\n" + "".join(
            f"  - |\n    objectName: {key_vault_secret_name(args.model, key)}\n    objectType: secret\n"
            f"    objectAlias: {key}\n"
            for key in needed
        )
        self.provider_class = k8s.apiextensions.CustomResource(
            f"{name}-provider-class",
            api_version="secrets-store.csi.x-k8s.io/v1",
            kind="SecretProviderClass",
            metadata=ObjectMetaArgs(name=class_name, namespace=args.namespace, labels=args.labels),
            spec={
                "provider": "azure",
                "parameters": {
                    "usePodIdentity": "false",
                    "clientID": self.identity.client_id,
                    "keyvaultName": vault.name,
                    "tenantId": client.tenant_id,
                    "objects": objects,
                },
            },
            opts=child,
        )
        if set(args.env.values()) - set(args.file_env.values()):
            raise ValueError(f"{args.model}: the engine reads some secrets only from the environment")
        return SecretWiring(
            env=_file_env(args.file_env),
            volumes=[
                VolumeArgs(
                    name=VOLUME,
                    csi=CSIVolumeSourceArgs(
                        driver=CSI_DRIVER, read_only=True, volume_attributes={"secretProviderClass": class_name}
                    ),
                )
            ],
            volume_mounts=[VolumeMountArgs(name=VOLUME, mount_path=MOUNT_PATH, read_only=True)],
            service_account_annotations={"azure.workload.identity/client-id": self.identity.client_id},
            pod_labels={"azure.workload.identity/use": "true"},
        )


def _file_env(variables: Mapping[str, str]) -> list[EnvVarArgs]:
    return [EnvVarArgs(name=variable, value=f"{MOUNT_PATH}/{key}") for variable, key in sorted(variables.items())]
