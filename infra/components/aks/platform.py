"""All AKS components of a stack in order: network, cluster, node pools, GPU drivers."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.components.aks.auto_pools import AutoGpuNodePool, AutoGpuNodePoolArgs
from infra.components.aks.cluster import AksCluster, AksClusterArgs
from infra.components.aks.gpu_drivers import GpuDrivers, GpuDriversArgs
from infra.components.aks.network import AksNetwork, AksNetworkArgs
from infra.components.aks.node_pools import GpuNodePool, GpuNodePoolArgs, UserNodePool, UserNodePoolArgs
from infra.config.cluster import AksCluster as AksClusterConfig


@dataclass
class AksPlatform:
    network: AksNetwork
    cluster: AksCluster
    user_pool: UserNodePool | None
    gpu_pools: dict[str, GpuNodePool]
    drivers: GpuDrivers | None
    #: The GPU pools Karpenter provisions (``nodeProvisioning: auto``), instead of ``gpu_pools``.
    auto_gpu_pools: dict[str, AutoGpuNodePool]

    @property
    def provider(self) -> k8s.Provider:
        """The Kubernetes provider every Kubernetes object of the stack goes through."""
        return self.cluster.provider


def deploy_aks(
    config: AksClusterConfig,
    *,
    protect: bool,
    service_monitor: bool = False,
    fqdn_policies: bool = False,
    vertical_pod_autoscaler: bool = False,
    name: str = "aks",
) -> AksPlatform:
    """Declare the AKS resources of ``config``; ``protect`` (the stack's flag) guards cluster, pools and group."""
    network = AksNetwork(f"{name}-network", AksNetworkArgs(cluster=config, protect=protect))
    cluster = AksCluster(
        f"{name}-cluster",
        AksClusterArgs(
            cluster=config,
            resource_group_name=network.resource_group_name,
            location=network.location,
            node_subnet_id=network.node_subnet_id,
            protect=protect,
            fqdn_policies=fqdn_policies,
            vertical_pod_autoscaler=vertical_pod_autoscaler,
        ),
    )
    cluster_name = cluster.managed_cluster.name
    auto = config.node_provisioning == "auto"
    user_pool = None
    if config.user_pool is not None:
        user_pool = UserNodePool(
            f"{name}-pool-{config.user_pool.name}",
            UserNodePoolArgs(
                pool=config.user_pool,
                resource_group_name=network.resource_group_name,
                cluster_name=cluster_name,
                node_subnet_id=network.node_subnet_id,
                tags=config.tags,
                protect=protect,
                fixed_size=auto,
            ),
        )
    gpu_pools = {
        pool.name: GpuNodePool(
            f"{name}-pool-{pool.name}",
            GpuNodePoolArgs(
                pool=pool,
                resource_group_name=network.resource_group_name,
                cluster_name=cluster_name,
                node_subnet_id=network.node_subnet_id,
                tags=config.tags,
                protect=protect,
            ),
        )
        for pool in config.gpu_pools
        if not auto
    }
    auto_gpu_pools = {
        pool.name: AutoGpuNodePool(
            f"{name}-auto-pool-{pool.name}",
            AutoGpuNodePoolArgs(
                pool=pool, location=config.location, labels={"app.kubernetes.io/managed-by": "slm-deploy"}
            ),
            # Karpenter's CRDs exist once the cluster runs node auto-provisioning.
            opts=pulumi.ResourceOptions(provider=cluster.provider, depends_on=[cluster.managed_cluster]),
        )
        for pool in config.gpu_pools
        if auto
    }
    drivers = None
    if config.gpu_pools:
        drivers = GpuDrivers(
            f"{name}-gpu-drivers",
            GpuDriversArgs(pools=config.gpu_pools, service_monitor=service_monitor),
            opts=pulumi.ResourceOptions(provider=cluster.provider),
        )
    return AksPlatform(
        network=network,
        cluster=cluster,
        user_pool=user_pool,
        gpu_pools=gpu_pools,
        drivers=drivers,
        auto_gpu_pools=auto_gpu_pools,
    )
