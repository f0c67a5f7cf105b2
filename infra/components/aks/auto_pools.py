"""GPU pools under AKS node auto-provisioning: a Karpenter NodePool and an AKSNodeClass per pool.

With ``cluster.nodeProvisioning: auto`` the ManagedCluster runs Karpenter (``nodeProvisioningProfile.mode: Auto``,
AKS's default NodePools off) and each ``gpuPools`` entry becomes:

- an ``AKSNodeClass`` (``karpenter.azure.com/v1beta1``, cluster-scoped): the node image and AKS's NVIDIA driver;
- a ``NodePool`` (``karpenter.sh/v1``, cluster-scoped): the pool's one VM size, on-demand (or spot), its zones, the
  same taint and labels the model servers tolerate and select (``infra.gpu``), and ``limits`` of
  ``maxCount x GPUs per node`` of ``nvidia.com/gpu``, so Karpenter never buys more than the pool's bound.

Field names are those of the CRDs in github.com/Azure/karpenter-provider-azure,
``pkg/apis/crds/karpenter.sh_nodepools.yaml`` (commit 01fb1aeaf292) and
``pkg/apis/crds/karpenter.azure.com_aksnodeclasses.yaml`` (commit 00ae11268ef8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import gpu
from infra.config.cluster import GpuPool

NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.azure.com/v1beta1"
NODE_CLASS_GROUP = "karpenter.azure.com"
#: Well-known node labels Karpenter schedules by.
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
ZONE = "topology.kubernetes.io/zone"
#: Empty GPU nodes go after this long (an expensive node idles no longer); model servers' PDBs guard the rest.
CONSOLIDATE_AFTER = "10m"


@dataclass
class AutoGpuNodePoolArgs:
    pool: GpuPool
    #: The cluster's region: AKS zone labels read ``<region>-<zone>``.
    location: str
    labels: dict[str, str]


def taint(pool: GpuPool) -> dict[str, str]:
    """The pool taint (``infra.gpu``) as a Kubernetes taint."""
    return {"key": gpu.GPU_TAINT_KEY, "value": gpu.GPU_TAINT_VALUE, "effect": gpu.GPU_TAINT_EFFECT}


def node_pool_spec(pool: GpuPool, location: str) -> dict[str, Any]:
    """The NodePool's spec: one VM size, the GPU taint and labels, and a GPU limit from ``maxCount``."""
    requirements: list[dict[str, Any]] = [
        {"key": INSTANCE_TYPE, "operator": "In", "values": [pool.vm_size]},
        {"key": CAPACITY_TYPE, "operator": "In", "values": ["spot" if pool.spot else "on-demand"]},
    ]
    if pool.zones:
        requirements.append({"key": ZONE, "operator": "In", "values": [f"{location}-{zone}" for zone in pool.zones]})
    return {
        "template": {
            "metadata": {"labels": pool.node_labels},
            "spec": {
                "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": "AKSNodeClass", "name": pool.name},
                "requirements": requirements,
                "taints": [taint(pool)],
            },
        },
        "limits": {gpu.NVIDIA_GPU: str(pool.max_count * pool.size.gpu_count)},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": CONSOLIDATE_AFTER},
    }


def node_class_spec(pool: GpuPool) -> dict[str, Any]:
    """The AKSNodeClass's spec: the pool's OS image and who installs the NVIDIA driver."""
    return {
        "imageFamily": pool.os_sku,
        "gpu": {"mode": "Driver" if pool.gpu_driver == "install" else "None"},
    }


class AutoGpuNodePool(pulumi.ComponentResource):
    """A GPU pool Karpenter provisions: its AKSNodeClass and NodePool (both cluster-scoped)."""

    node_class: k8s.apiextensions.CustomResource
    node_pool: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: AutoGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:AutoGpuNodePool", name, None, opts)
        pool = args.pool
        metadata = k8s.meta.v1.ObjectMetaArgs(name=pool.name, labels=args.labels)
        self.node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version=NODE_CLASS_API,
            kind="AKSNodeClass",
            metadata=metadata,
            spec=node_class_spec(pool),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.node_pool = k8s.apiextensions.CustomResource(
            f"{name}-node-pool",
            api_version=NODE_POOL_API,
            kind="NodePool",
            metadata=metadata,
            spec=node_pool_spec(pool, args.location),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_class]),
        )
        self.register_outputs({"nodePool": pool.name})
