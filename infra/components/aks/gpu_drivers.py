"""NVIDIA software on the GPU pools, as pinned Helm releases.

- Pools whose NVIDIA driver AKS installs (``gpuDriver: install``) get the NVIDIA device plugin (it advertises
  ``nvidia.com/gpu``) and the DCGM exporter (GPU metrics for Prometheus).
- Pools that skip the AKS driver (``gpuDriver: none``) get the NVIDIA GPU Operator, which installs the driver,
  container toolkit, device plugin and its own DCGM exporter.

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


class GpuDrivers(pulumi.ComponentResource):
    """Device plugin and DCGM exporter (AKS-installed drivers), or the GPU Operator (driver install skipped)."""

    device_plugin: k8s.helm.v3.Release | None
    dcgm_exporter: k8s.helm.v3.Release | None
    gpu_operator: k8s.helm.v3.Release | None

    def __init__(self, name: str, args: GpuDriversArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("slm-deploy:aks:GpuDrivers", name, None, opts)
        aks_driver = [pool for pool in args.pools if pool.gpu_driver == "install"]
        operator = [pool for pool in args.pools if pool.gpu_driver == "none"]
        self.device_plugin = None
        self.dcgm_exporter = None
        self.gpu_operator = None

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
                },
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
            opts=pulumi.ResourceOptions(parent=self),
        )
