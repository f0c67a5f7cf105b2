"""What one pod gets of a shared GPU: a MIG slice (isolated memory) or a time slice (the whole card, shared).

- **MIG** (A100 and H100 only): AKS partitions every GPU of a pool with the agent pool's ``gpuInstanceProfile``
  (pulumi-azure-native ``containerservice.GPUInstanceProfile``: MIG1g, MIG2g, MIG3g, MIG4g, MIG7g). Each slice has
  its own memory and compute; the device plugin (MIG strategy ``mixed``) advertises it as
  ``nvidia.com/mig-<g>g.<memory>gb``. Slices per GPU and their memory are NVIDIA's MIG profile table (MIG User
  Guide, "Supported MIG Profiles": A100 80GB and H100 NVL 94GB); the memory in a profile's name is nominal (a
  ``1g.10gb`` slice holds a little under 10 GiB), and sizing uses that figure.
- **Time-slicing**: the device plugin advertises each GPU ``replicas`` times (``sharing.timeSlicing`` in its
  config: github.com/NVIDIA/k8s-device-plugin v0.17.4, ``api/config/v1/sharing.go`` and ``replicas.go``) as
  ``nvidia.com/gpu.shared`` (``renameByDefault``). Nothing isolates memory or faults: every pod sees the whole
  card, so each may fill ``1/replicas`` of it — for vLLM, ``--gpu-memory-utilization`` is divided by ``replicas``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from infra.sizing.vm_sizes import GpuVmSize

MigProfile = Literal["MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"]
MIG_PROFILES: tuple[str, ...] = get_args(MigProfile)
#: The resource a time-sliced GPU is advertised as (k8s-device-plugin: ``<name>`` + DefaultSharedResourceNameSuffix).
TIME_SLICED_RESOURCE = "nvidia.com/gpu.shared"


@dataclass(frozen=True)
class MigSlice:
    """One MIG profile on one GPU model: the slice's name, memory and how many fit on a GPU."""

    profile: str
    name: str
    memory_gb: float
    per_gpu: int

    @property
    def resource(self) -> str:
        """The extended resource the device plugin (MIG strategy ``mixed``) advertises."""
        return f"nvidia.com/mig-{self.name}"


def _profiles(memory: tuple[int, int, int, int, int]) -> dict[str, MigSlice]:
    one, two, three, four, seven = memory
    return {
        "MIG1g": MigSlice("MIG1g", f"1g.{one}gb", one, 7),
        "MIG2g": MigSlice("MIG2g", f"2g.{two}gb", two, 3),
        "MIG3g": MigSlice("MIG3g", f"3g.{three}gb", three, 2),
        "MIG4g": MigSlice("MIG4g", f"4g.{four}gb", four, 1),
        "MIG7g": MigSlice("MIG7g", f"7g.{seven}gb", seven, 1),
    }


#: MIG profiles by GPU (as :mod:`infra.sizing.vm_sizes` names them); GPUs not listed have no MIG.
MIG_SLICES: dict[str, dict[str, MigSlice]] = {
    "NVIDIA A100 PCIe": _profiles((10, 20, 40, 40, 80)),
    "NVIDIA H100 NVL": _profiles((12, 24, 47, 47, 94)),
}


class NoMigError(LookupError):
    """The VM size's GPU has no MIG (only A100 and H100 do)."""


def mig_slice(size: GpuVmSize, profile: str) -> MigSlice:
    """The slice ``profile`` makes on ``size``'s GPUs."""
    table = MIG_SLICES.get(size.gpu)
    if table is None:
        capable = ", ".join(sorted(MIG_SLICES))
        raise NoMigError(f"{size.name} has {size.gpu} GPUs, which have no MIG (MIG needs {capable})")
    return table[profile]


def mig_shape(size: GpuVmSize, profile: str) -> GpuVmSize:
    """What a pod holding one MIG slice of ``size`` sees: one GPU with the slice's memory."""
    part = mig_slice(size, profile)
    return dataclasses.replace(size, gpu=f"{size.gpu} MIG {part.name}", gpu_count=1, gpu_memory_gb=part.memory_gb)


def time_slice_shape(size: GpuVmSize, replicas: int) -> GpuVmSize:
    """What a pod holding one time slice of ``size`` sees: a whole GPU, of which it may fill ``1/replicas``."""
    return dataclasses.replace(
        size, gpu=f"{size.gpu} time-sliced 1/{replicas}", gpu_count=1, memory_share=1.0 / replicas
    )
