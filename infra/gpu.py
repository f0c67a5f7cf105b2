"""How GPU node pools and the model servers that run on them find each other.

Pools and pods agree on these labels and taints by construction: both sides call the functions
below, so a renamed label cannot leave a pod unschedulable. AKS pools always carry :data:`POOL_LABEL`;
on an existing cluster the stack names the node label its GPU nodes carry (``cluster.gpuNodeLabel``,
:data:`POOL_LABEL` by default), and its nodes are labelled and tainted by whoever runs the cluster
(:func:`label_command`, :func:`taint_command`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Node label naming the slm-deploy GPU pool a node belongs to.
POOL_LABEL = "slm-deploy.io/gpu-pool"
#: Taint put on every GPU pool so that only pods that ask for GPUs land there.
GPU_TAINT_KEY = "sku"
GPU_TAINT_VALUE = "gpu"
GPU_TAINT_EFFECT = "NoSchedule"
#: Extended resource the NVIDIA device plugin advertises (and taints with, on some platforms).
NVIDIA_GPU = "nvidia.com/gpu"
#: Node label that picks a node's entry in the device plugin's ConfigMap (the plugin's config-manager watches it:
#: github.com/NVIDIA/k8s-device-plugin v0.17.4, ``cmd/config-manager/main.go``, DefaultConfigLabel).
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
#: The ConfigMap holding one device plugin config per shared GPU pool (key: the pool's name) and ``default``.
DEVICE_PLUGIN_CONFIG_MAP = "nvidia-device-plugin-configs"
DEVICE_PLUGIN_DEFAULT_CONFIG = "default"


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str
    effect: str
    value: str | None = None


def pool_node_labels(pool: str) -> dict[str, str]:
    """Labels a GPU pool's nodes carry."""
    return {POOL_LABEL: pool}


def pool_taint() -> str:
    """The pool taint in AKS ``nodeTaints`` syntax (``key=value:Effect``)."""
    return f"{GPU_TAINT_KEY}={GPU_TAINT_VALUE}:{GPU_TAINT_EFFECT}"


def node_selector(pool: str, label: str = POOL_LABEL) -> dict[str, str]:
    """What a model server selects to land on ``pool``: ``label`` (a node label key) equal to the pool's name."""
    return {label: pool}


def label_command(pool: str, label: str = POOL_LABEL, node: str = "<node>") -> str:
    """The ``kubectl`` command that puts a node of an existing cluster into ``pool``."""
    return f"kubectl label nodes {node} {label}={pool}"


def taint_command(node: str = "<node>") -> str:
    """The ``kubectl`` command that keeps every pod but GPU model servers off a node of an existing cluster."""
    return f"kubectl taint nodes {node} {pool_taint()}"


#: AKS taints spot nodes with this; a GPU pod may land there only when its pool is a spot pool.
SPOT_TAINT_KEY = "kubernetes.azure.com/scalesetpriority"


def tolerations() -> list[Toleration]:
    """What a GPU pod tolerates: the pool taint, the device plugin's ``nvidia.com/gpu`` taint and AKS's spot
    taint (the node selector decides the pool; tolerating spot only matters when that pool is a spot pool)."""
    return [
        Toleration(key=GPU_TAINT_KEY, operator="Equal", value=GPU_TAINT_VALUE, effect=GPU_TAINT_EFFECT),
        Toleration(key=NVIDIA_GPU, operator="Exists", effect="NoSchedule"),
        Toleration(key=SPOT_TAINT_KEY, operator="Equal", value="spot", effect="NoSchedule"),
    ]
