"""The hardened AKS ManagedCluster, its kubeconfig (a secret) and the Kubernetes provider built from it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_azure_native import containerservice

from infra.config.cluster import CRITICAL_ADDONS_TAINT
from infra.config.cluster import AksCluster as AksClusterConfig
from infra.yamlio import load_yaml

#: The add-on profile key of the Secrets Store CSI driver with the Azure Key Vault provider.
KEY_VAULT_ADDON = "azureKeyvaultSecretsProvider"


@dataclass
class AksClusterArgs:
    cluster: AksClusterConfig
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    #: protect=True on the cluster (prod).
    protect: bool = False
    #: Enforce CiliumNetworkPolicy ``toFQDNs`` (the stack allows model downloads by host name). AKS needs
    #: Advanced Container Networking Services security for that; without it the FQDN rules do nothing.
    fqdn_policies: bool = False
    #: Turn on AKS's Vertical Pod Autoscaler add-on (a model asks for recommendations: `vpa.enabled`).
    vertical_pod_autoscaler: bool = False


def kubeconfig_for(encoded: str, login: str) -> str:
    """The base64 kubeconfig AKS returns, decoded, with kubelogin's ``--login`` set to ``login``.

    AKS hands out an ``exec`` kubeconfig whose kubelogin logs in with ``devicecode`` (interactive); a
    deployment needs a non-interactive method such as ``azurecli`` or ``workloadidentity``.
    """
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("the cluster's user credentials are not a base64 kubeconfig") from error
    document: Any = load_yaml(text)
    if not isinstance(document, dict):
        raise ValueError("the cluster's user credentials are not a kubeconfig")
    for user in document.get("users") or []:
        exec_config = (user.get("user") or {}).get("exec") if isinstance(user, dict) else None
        if not isinstance(exec_config, dict) or not isinstance(exec_config.get("args"), list):
            continue
        args: list[str] = exec_config["args"]
        if "--login" in args[:-1]:
            args[args.index("--login") + 1] = login
        else:
            args.extend(["--login", login])
    return str(yaml.safe_dump(document, sort_keys=False))


class AksCluster(pulumi.ComponentResource):
    """A ManagedCluster hardened by default, and the one Kubernetes provider the stack's objects go through."""

    managed_cluster: containerservice.ManagedCluster
    #: The user kubeconfig (Entra ID, kubelogin exec plugin), a Pulumi secret.
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    oidc_issuer_url: pulumi.Output[str]

    def __init__(self, name: str, args: AksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:AksCluster", name, None, opts)
        config = args.cluster
        system = config.system_pool
        # Node auto-provisioning: Karpenter adds GPU nodes (infra/components/aks/auto_pools.py); AKS refuses
        # autoscaled agent pools beside it, so the system pool runs at its minCount.
        auto = config.node_provisioning == "auto"
        access = config.api_server
        net = config.network

        if config.user_assigned_identity_id:
            identity = containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[config.user_assigned_identity_id],
            )
        else:
            identity = containerservice.ManagedClusterIdentityArgs(
                type=containerservice.ResourceIdentityType.SYSTEM_ASSIGNED
            )

        self.managed_cluster = containerservice.ManagedCluster(
            f"{name}-cluster",
            # Keyword arguments, not ManagedClusterArgs: the SDK passes that class's `resource_name` (the Azure
            # name) on as the Pulumi resource name and fails ("multiple values for argument 'resource_name'").
            resource_group_name=args.resource_group_name,
            resource_name_=config.name,
            location=args.location,
            dns_prefix=config.name,
            kubernetes_version=config.kubernetes_version,
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=config.sku_tier),
            identity=identity,
            # Entra ID sign-in, authorization by Azure RBAC, and no static admin credentials.
            aad_profile=containerservice.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=list(config.admin_group_object_ids) or None,
            ),
            enable_rbac=True,
            disable_local_accounts=True,
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                enable_private_cluster=access.private,
                authorized_ip_ranges=list(access.authorized_ip_ranges) or None,
            ),
            oidc_issuer_profile=containerservice.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=containerservice.ManagedClusterSecurityProfileArgs(
                workload_identity=containerservice.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True)
            ),
            # Azure CNI Overlay powered by Cilium: Cilium enforces NetworkPolicies (and CiliumNetworkPolicies).
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure",
                network_plugin_mode="overlay",
                network_policy="cilium",
                network_dataplane="cilium",
                pod_cidr=net.pod_cidr,
                service_cidr=net.service_cidr,
                dns_service_ip=net.dns_service_ip,
                load_balancer_sku="standard",
                outbound_type="loadBalancer",
                advanced_networking=containerservice.AdvancedNetworkingArgs(
                    enabled=True,
                    security=containerservice.AdvancedNetworkingSecurityArgs(
                        enabled=True, advanced_network_policies="FQDN"
                    ),
                )
                if args.fqdn_policies
                else None,
            ),
            # Only the VPA's components: KEDA, when used, is the stack's own pinned release.
            workload_auto_scaler_profile=containerservice.ManagedClusterWorkloadAutoScalerProfileArgs(
                vertical_pod_autoscaler=containerservice.ManagedClusterWorkloadAutoScalerProfileVerticalPodAutoscalerArgs(
                    enabled=True
                )
            )
            if args.vertical_pod_autoscaler
            else None,
            addon_profiles={
                KEY_VAULT_ADDON: containerservice.ManagedClusterAddonProfileArgs(
                    enabled=True, config={"enableSecretRotation": "true", "rotationPollInterval": "2m"}
                )
            },
            auto_upgrade_profile=containerservice.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=config.upgrade_channel,
                node_os_upgrade_channel=config.node_os_upgrade_channel,
            ),
            # The system pool only; user and GPU pools are AgentPool resources of their own.
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name=system.name,
                    mode="System",
                    type="VirtualMachineScaleSets",
                    vm_size=system.vm_size,
                    os_type="Linux",
                    os_sku=system.os_sku,
                    enable_auto_scaling=not auto,
                    count=system.min_count,
                    min_count=None if auto else system.min_count,
                    max_count=None if auto else system.max_count,
                    availability_zones=list(system.zones) or None,
                    node_taints=[CRITICAL_ADDONS_TAINT] if system.only_critical_addons else None,
                    vnet_subnet_id=args.node_subnet_id,
                    enable_node_public_ip=False,
                )
            ],
            # AKS's own default NodePools have no limits the stack sets or sees: off; the stack's are limited.
            node_provisioning_profile=containerservice.ManagedClusterNodeProvisioningProfileArgs(
                mode=containerservice.NodeProvisioningMode.AUTO,
                default_node_pools=containerservice.NodeProvisioningDefaultNodePools.NONE,
            )
            if auto
            else None,
            tags=dict(config.tags),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # The autoscaler owns the node count, the upgrade channels own the versions.
                ignore_changes=[
                    "kubernetesVersion",
                    "agentPoolProfiles[0].count",
                    "agentPoolProfiles[0].orchestratorVersion",
                ],
            ),
        )

        # An invoke, run once the cluster exists (it takes the cluster's name output). Local accounts are
        # disabled, so these are the Entra ID user credentials: a kubeconfig for the kubelogin exec plugin.
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name,
            resource_name=self.managed_cluster.name,
            format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        login = config.kubelogin_method

        def first_kubeconfig(kubeconfigs: Sequence[Any] | None) -> str:
            if not kubeconfigs:
                raise ValueError(f"AKS returned no user credentials for cluster '{config.name}'")
            return kubeconfig_for(kubeconfigs[0].value, login)

        self.kubeconfig = pulumi.Output.secret(credentials.kubeconfigs.apply(first_kubeconfig))
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=self.kubeconfig,
            # Server-side apply: field ownership is tracked by the API server, as kubectl and GitOps tools do.
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.oidc_issuer_url = self.managed_cluster.oidc_issuer_profile.apply(
            lambda profile: (profile.issuer_url or "") if profile else ""
        )
        self.register_outputs(
            {
                "clusterName": self.managed_cluster.name,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "kubeconfig": self.kubeconfig,
            }
        )
