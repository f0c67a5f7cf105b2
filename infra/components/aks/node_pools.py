"""AKS User node pools as AgentPool resources: one per GPU pool (tainted, labelled), and the CPU user pool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import containerservice

from infra.config.cluster import GpuPool, UserPool
from infra.config.gpu_sharing import Mig

#: Spot VMs may be evicted whatever they cost (up to the on-demand price): -1 means "never evict for price".
SPOT_MAX_PRICE = -1.0
#: The autoscaler owns the node count, the cluster's upgrade channel the version.
_IGNORED = ["count", "orchestratorVersion"]


def _user_pool(
    name: str,
    pool: GpuPool | UserPool,
    args: GpuNodePoolArgs | UserNodePoolArgs,
    parent: pulumi.Resource,
    **specific: Any,
) -> containerservice.AgentPool:
    """An autoscaled User pool in the node subnet, without public IPs; ``specific`` adds the pool's own settings."""
    return containerservice.AgentPool(
        f"{name}-agent-pool",
        # Keyword arguments: AgentPoolArgs(resource_name=...) collides with the Pulumi resource name.
        resource_group_name=args.resource_group_name,
        resource_name_=args.cluster_name,
        agent_pool_name=pool.name,
        mode=containerservice.AgentPoolMode.USER,
        type=containerservice.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
        vm_size=pool.vm_size,
        os_type=containerservice.OSType.LINUX,
        os_sku=pool.os_sku,
        # Beside node auto-provisioning AKS refuses autoscaled agent pools: the pool runs at its minCount.
        enable_auto_scaling=not args.fixed_size,
        count=pool.min_count,
        min_count=None if args.fixed_size else pool.min_count,
        max_count=None if args.fixed_size else pool.max_count,
        availability_zones=list(pool.zones) or None,
        vnet_subnet_id=args.node_subnet_id,
        enable_node_public_ip=False,
        tags=dict(args.tags),
        opts=pulumi.ResourceOptions(parent=parent, protect=args.protect, ignore_changes=_IGNORED),
        **specific,
    )


@dataclass
class GpuNodePoolArgs:
    pool: GpuPool
    resource_group_name: pulumi.Input[str]
    #: The ManagedCluster's name (its output, so the pool waits for the cluster).
    cluster_name: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)
    #: protect=True on the AgentPool (prod).
    protect: bool = False
    #: No cluster autoscaler (node auto-provisioning is on): ``minCount`` nodes.
    fixed_size: bool = False


class GpuNodePool(pulumi.ComponentResource):
    """One GPU node pool: mode User, autoscaling, the GPU taint and the pool label model servers select on."""

    agent_pool: containerservice.AgentPool

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:GpuNodePool", name, None, opts)
        pool = args.pool
        self.agent_pool = _user_pool(
            name,
            pool,
            args,
            self,
            os_disk_size_gb=pool.os_disk_size_gb,
            # The same taint and labels the model servers tolerate and select (infra.gpu); a shared pool's nodes
            # also name their device plugin config.
            node_taints=[pool.taint],
            node_labels=pool.node_labels,
            gpu_profile=containerservice.GPUProfileArgs(
                driver=containerservice.GPUDriver.INSTALL
                if pool.gpu_driver == "install"
                else containerservice.GPUDriver.NONE
            ),
            # MIG: AKS partitions every GPU of the pool into slices of this profile (docs/shared-gpus.md).
            gpu_instance_profile=pool.sharing.profile if isinstance(pool.sharing, Mig) else None,
            # Spot: evicted VMs are deleted (not kept deallocated), and price never triggers an eviction.
            scale_set_priority=containerservice.ScaleSetPriority.SPOT
            if pool.spot
            else containerservice.ScaleSetPriority.REGULAR,
            scale_set_eviction_policy=containerservice.ScaleSetEvictionPolicy.DELETE if pool.spot else None,
            spot_max_price=SPOT_MAX_PRICE if pool.spot else None,
        )
        self.register_outputs({"agentPoolName": self.agent_pool.name})


@dataclass
class UserNodePoolArgs:
    pool: UserPool
    resource_group_name: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    node_subnet_id: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False
    #: No cluster autoscaler (node auto-provisioning is on): ``minCount`` nodes.
    fixed_size: bool = False


class UserNodePool(pulumi.ComponentResource):
    """The CPU pool for workloads that are neither critical add-ons (system pool) nor model servers on GPUs."""

    agent_pool: containerservice.AgentPool

    def __init__(self, name: str, args: UserNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:UserNodePool", name, None, opts)
        self.agent_pool = _user_pool(
            name, args.pool, args, self, scale_set_priority=containerservice.ScaleSetPriority.REGULAR
        )
        self.register_outputs({"agentPoolName": self.agent_pool.name})
