"""How a GPU pool shares its GPUs between model servers: not at all, by time-slicing, or by MIG slices.

``GpuPool.sharing`` is :data:`GpuSharing` (discriminated on ``mode``). Each option answers the same questions:
what one replica gets (:meth:`shape`, for sizing), how many replicas a GPU holds (:meth:`slices_per_gpu`, for
capacity and cost), the extended resource a pod requests (:meth:`resource`) and the device plugin's config for
the pool's nodes (:meth:`device_plugin_config`, rendered into one ConfigMap by ``infra/components/aks``).
See docs/shared-gpus.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from infra import gpu
from infra.config.base import ConfigModel
from infra.sizing.slices import TIME_SLICED_RESOURCE, MigProfile, mig_shape, mig_slice, time_slice_shape
from infra.sizing.vm_sizes import GpuVmSize

#: The device plugin config format (github.com/NVIDIA/k8s-device-plugin ``api/config/v1/config.go``: ``version``).
_CONFIG_VERSION = "v1"


class NoSharing(ConfigModel):
    """Every replica gets whole GPUs (the default)."""

    mode: Literal["none"] = Field("none", description="`none`: whole GPUs per replica.")

    def slices_per_gpu(self, size: GpuVmSize) -> int:
        return 1

    def shape(self, size: GpuVmSize) -> GpuVmSize:
        return size

    def resource(self, size: GpuVmSize) -> str:
        return gpu.NVIDIA_GPU

    def device_plugin_config(self) -> dict[str, Any] | None:
        return None


class TimeSlicing(ConfigModel):
    """The device plugin advertises each GPU several times; the pods on it share memory and compute unisolated."""

    mode: Literal["timeSlicing"] = Field(description="`timeSlicing`: several replicas take turns on one GPU.")
    replicas_per_gpu: int = Field(
        ge=2,
        le=16,
        description="Pods one GPU holds (`sharing.timeSlicing.resources[].replicas`); each may fill 1/replicasPerGpu "
        "of its memory (vLLM's `--gpu-memory-utilization` is divided by it). No memory or fault isolation: refused "
        "in prod by the pack (gpu-time-slicing).",
    )

    def slices_per_gpu(self, size: GpuVmSize) -> int:
        return self.replicas_per_gpu

    def shape(self, size: GpuVmSize) -> GpuVmSize:
        return time_slice_shape(size, self.replicas_per_gpu)

    def resource(self, size: GpuVmSize) -> str:
        return TIME_SLICED_RESOURCE

    def device_plugin_config(self) -> dict[str, Any] | None:
        return {
            "version": _CONFIG_VERSION,
            "flags": {"migStrategy": "none"},
            "sharing": {
                "timeSlicing": {
                    # Advertised as nvidia.com/gpu.shared: a pod says it accepts a shared GPU.
                    "renameByDefault": True,
                    # Two time slices of one GPU are not more GPU: the plugin refuses such a request.
                    "failRequestsGreaterThanOne": True,
                    "resources": [{"name": gpu.NVIDIA_GPU, "replicas": self.replicas_per_gpu}],
                }
            },
        }


class Mig(ConfigModel):
    """AKS partitions every GPU of the pool into MIG slices with their own memory and compute (A100, H100)."""

    mode: Literal["mig"] = Field(description="`mig`: Multi-Instance GPU slices (A100 and H100 pools).")
    profile: MigProfile = Field(
        description="The agent pool's `gpuInstanceProfile`: MIG1g (A100 1g.10gb x7, H100 1g.12gb x7), MIG2g "
        "(2g.20gb/2g.24gb x3), MIG3g (3g.40gb/3g.47gb x2), MIG4g (4g.40gb/4g.47gb x1), MIG7g (the whole GPU)."
    )

    def slices_per_gpu(self, size: GpuVmSize) -> int:
        return mig_slice(size, self.profile).per_gpu

    def shape(self, size: GpuVmSize) -> GpuVmSize:
        return mig_shape(size, self.profile)

    def resource(self, size: GpuVmSize) -> str:
        return mig_slice(size, self.profile).resource

    def device_plugin_config(self) -> dict[str, Any] | None:
        # `mixed`: each slice is advertised under its own name (nvidia.com/mig-3g.40gb), so a pod names the
        # slice it was sized for.
        return {"version": _CONFIG_VERSION, "flags": {"migStrategy": "mixed"}}


GpuSharing = Annotated[NoSharing | TimeSlicing | Mig, Field(discriminator="mode")]
"""The type of ``GpuPool.sharing``."""
