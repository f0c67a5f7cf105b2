"""NVIDIA software on the GPU pools, as pinned Helm releases.

- Pools whose NVIDIA driver AKS installs (``gpuDriver: install``) get the NVIDIA device plugin (it advertises
  ``nvidia.com/gpu``) and the DCGM exporter (GPU metrics for Prometheus).
- Pools that skip the AKS driver (``gpuDriver: none``) get the NVIDIA GPU Operator, which installs the driver,
  container toolkit, device plugin and its own DCGM exporter.
- When a pool shares its GPUs (``sharing``: time-slicing or MIG), the stack renders the device plugin's configs as
  one ConfigMap (``infra.gpu.DEVICE_PLUGIN_CONFIG_MAP``: a ``default`` entry, and one per shared pool under the
  pool's name) and points the plugin at it (chart value ``config.name``). Shared pools need ``gpuDriver: install``
  (the stack's own device plugin; the config refuses sharing with the GPU Operator).
  The plugin's config-manager picks each node's entry by the node label ``nvidia.com/device-plugin.config``, which
  the shared pools' nodes carry (``GpuPool.node_labels``). Config format: github.com/NVIDIA/k8s-device-plugin
  v0.17.4, ``api/config/v1`` (``config.go``, ``sharing.go``, ``replicas.go``, ``flags.go``).

Every DaemonSet tolerates the GPU pool taint (``infra.gpu.tolerations()``) and is pinned by node affinity to
the pool label of the GPU pools (``infra.gpu.node_selector()``), so nothing lands on CPU nodes.

Chart versions were looked up in the charts' repositories and release notes; bump them deliberately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import gpu
from infra.config.cluster import GpuPool
from infra.config.objects import GPU_OPERATOR_NAMESPACE


@dataclass(frozen=True)
class ChartRef:
    chart: str
    repo: str
    version: str


#: NVIDIA device plugin (k8s-device-plugin v0.20.0).
DEVICE_PLUGIN = ChartRef("nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.20.0")
#: DCGM exporter chart 4.8.3 (exporter 4.8.3 with DCGM 4.6.0).
DCGM_EXPORTER = ChartRef("dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.8.3")
#: NVIDIA GPU Operator v26.3.3 (its chart versions carry the leading "v").
GPU_OPERATOR = ChartRef("gpu-operator", "https://helm.ngc.nvidia.com/nvidia", "v26.3.3")

#: Where the device plugin and the DCGM exporter run (as AKS documents for the device plugin).
DRIVER_NAMESPACE = "kube-system"
#: AKS taints spot nodes with this; DaemonSets on spot GPU pools must tolerate it too.
SPOT_TOLERATION = {
    "key": "kubernetes.azure.com/scalesetpriority",
    "operator": "Equal",
    "value": "spot",
    "effect": "NoSchedule",
}


@dataclass
class GpuDriversArgs:
    pools: Sequence[GpuPool]
    #: Create ServiceMonitors for the DCGM exporter (needs the Prometheus Operator CRDs).
    service_monitor: bool = False
    device_plugin: ChartRef = DEVICE_PLUGIN
    dcgm_exporter: ChartRef = DCGM_EXPORTER
    gpu_operator: ChartRef = GPU_OPERATOR


def gpu_tolerations(pools: Sequence[GpuPool]) -> list[dict[str, str]]:
    """The GPU taint tolerations of :func:`infra.gpu.tolerations`, plus AKS's spot taint when a pool is spot."""
    tolerations = [
        {"key": t.key, "operator": t.operator, "effect": t.effect, **({"value": t.value} if t.value else {})}
        for t in gpu.tolerations()
    ]
    if any(pool.spot for pool in pools):
        tolerations.append(dict(SPOT_TOLERATION))
    return tolerations


def gpu_pool_affinity(pools: Sequence[GpuPool]) -> dict[str, Any]:
    """Node affinity for any of ``pools``: one selector term per pool (terms are ORed), from infra.gpu."""
    terms = [
        {
            "matchExpressions": [
                {"key": key, "operator": "In", "values": [value]}
                for key, value in sorted(gpu.node_selector(pool.name).items())
            ]
        }
        for pool in pools
    ]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def device_plugin_configs(pools: Sequence[GpuPool]) -> dict[str, str]:
    """The device plugin ConfigMap's data: ``default`` (whole GPUs, no MIG) and one config per shared pool."""
    configs: dict[str, dict[str, Any]] = {
        gpu.DEVICE_PLUGIN_DEFAULT_CONFIG: {"version": "v1", "flags": {"migStrategy": "none"}}
    }
    for pool in pools:
        config = pool.sharing.device_plugin_config()
        if config is not None:
            configs[pool.name] = config
    return {key: yaml.safe_dump(value, sort_keys=False) for key, value in configs.items()}


class GpuDrivers(pulumi.ComponentResource):
    """Device plugin and DCGM exporter (AKS-installed drivers), or the GPU Operator (driver install skipped)."""

    device_plugin: k8s.helm.v3.Release | None
    dcgm_exporter: k8s.helm.v3.Release | None
    gpu_operator: k8s.helm.v3.Release | None
    #: The device plugin's configs, when a pool shares its GPUs.
    plugin_config: k8s.core.v1.ConfigMap | None

    def __init__(self, name: str, args: GpuDriversArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:GpuDrivers", name, None, opts)
        aks_driver = [pool for pool in args.pools if pool.gpu_driver == "install"]
        operator = [pool for pool in args.pools if pool.gpu_driver == "none"]
        self.device_plugin = None
        self.dcgm_exporter = None
        self.gpu_operator = None

        self.plugin_config = None
        plugin_values: dict[str, Any] = {}
        if any(pool.shared for pool in args.pools):
            self.plugin_config = k8s.core.v1.ConfigMap(
                f"{name}-device-plugin-config",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=gpu.DEVICE_PLUGIN_CONFIG_MAP,
                    namespace=DRIVER_NAMESPACE,
                    labels={"app.kubernetes.io/managed-by": "slm-deploy", "app.kubernetes.io/component": "gpu-sharing"},
                ),
                data=device_plugin_configs(args.pools),
                opts=pulumi.ResourceOptions(parent=self),
            )
            plugin_values = {
                "config": {"name": gpu.DEVICE_PLUGIN_CONFIG_MAP, "default": gpu.DEVICE_PLUGIN_DEFAULT_CONFIG}
            }
        if aks_driver:
            placement = {"tolerations": gpu_tolerations(aks_driver), "affinity": gpu_pool_affinity(aks_driver)}
            self.device_plugin = self._release(
                f"{name}-device-plugin",
                "nvidia-device-plugin",
                args.device_plugin,
                DRIVER_NAMESPACE,
                {
                    **placement,
                    # GPU feature discovery needs NFD; the pool label already says which nodes have GPUs.
                    "gfd": {"enabled": False},
                    "priorityClassName": "system-node-critical",
                    **plugin_values,
                },
                depends_on=self.plugin_config,
            )
            self.dcgm_exporter = self._release(
                f"{name}-dcgm-exporter",
                "dcgm-exporter",
                args.dcgm_exporter,
                DRIVER_NAMESPACE,
                {**placement, "serviceMonitor": {"enabled": args.service_monitor}},
            )
        if operator:
            tolerations = gpu_tolerations(operator)
            self.gpu_operator = self._release(
                f"{name}-gpu-operator",
                "gpu-operator",
                args.gpu_operator,
                GPU_OPERATOR_NAMESPACE,
                {
                    # AKS skipped the driver on these pools: the operator installs driver and toolkit.
                    "driver": {"enabled": True},
                    "toolkit": {"enabled": True},
                    "devicePlugin": {"enabled": True},
                    "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": args.service_monitor}},
                    "daemonsets": {"tolerations": tolerations},
                    "node-feature-discovery": {"worker": {"tolerations": tolerations}},
                },
                create_namespace=True,
            )
        self.register_outputs(
            {"releases": [r.name for r in (self.device_plugin, self.dcgm_exporter, self.gpu_operator) if r is not None]}
        )

    def _release(
        self,
        resource_name: str,
        release_name: str,
        chart: ChartRef,
        namespace: str,
        values: dict[str, Any],
        create_namespace: bool = False,
        depends_on: pulumi.Resource | None = None,
    ) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            resource_name,
            k8s.helm.v3.ReleaseArgs(
                name=release_name,
                chart=chart.chart,
                version=chart.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
                namespace=namespace,
                create_namespace=create_namespace,
                atomic=True,
                cleanup_on_fail=True,
                max_history=10,
                timeout=600,
                values=values,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[depends_on] if depends_on is not None else None),
        )
