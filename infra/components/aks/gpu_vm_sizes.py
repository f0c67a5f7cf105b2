"""Azure GPU VM sizes an AKS GPU pool may use: whole NVIDIA GPUs per VM and memory per GPU.

Sources (GPUs per VM of each size; memory per GPU):
- NCasT4_v3 series, NVIDIA T4 16 GB:
  https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ncast4v3-series
- NVadsA10 v5 series, NVIDIA A10 24 GB (NV6/12/18ads hold 1/6, 1/3 and 1/2 of one GPU: left out, the
  device plugin cannot hand out a fraction):
  https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nvadsa10v5-series
- NC A100 v4 series, NVIDIA A100 PCIe 80 GB:
  https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nca100v4-series
- NCads H100 v5 series, NVIDIA H100 NVL 94 GB:
  https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/ncadsh100v5-series

No Pulumi import here: the stack config validates pools and models against this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSku:
    """One GPU model as Azure sells it."""

    family: str
    gpu: str
    memory_gb_per_gpu: int


T4 = GpuSku("NCasT4_v3", "NVIDIA T4", 16)
A10 = GpuSku("NVadsA10_v5", "NVIDIA A10", 24)
A100 = GpuSku("NC_A100_v4", "NVIDIA A100 PCIe", 80)
H100 = GpuSku("NCads_H100_v5", "NVIDIA H100 NVL", 94)


@dataclass(frozen=True)
class GpuVmSize:
    """An Azure VM size with whole GPUs of one SKU."""

    name: str
    sku: GpuSku
    gpus: int

    @property
    def gpu_memory_gb(self) -> int:
        """Memory of one GPU."""
        return self.sku.memory_gb_per_gpu

    @property
    def total_gpu_memory_gb(self) -> int:
        return self.gpus * self.sku.memory_gb_per_gpu


#: GPUs per VM, per size, grouped by SKU.
_GPUS_PER_SIZE: dict[GpuSku, dict[str, int]] = {
    T4: {
        "Standard_NC4as_T4_v3": 1,
        "Standard_NC8as_T4_v3": 1,
        "Standard_NC16as_T4_v3": 1,
        "Standard_NC64as_T4_v3": 4,
    },
    A10: {
        "Standard_NV36ads_A10_v5": 1,
        "Standard_NV36adms_A10_v5": 1,
        "Standard_NV72ads_A10_v5": 2,
    },
    A100: {
        "Standard_NC24ads_A100_v4": 1,
        "Standard_NC48ads_A100_v4": 2,
        "Standard_NC96ads_A100_v4": 4,
    },
    H100: {
        "Standard_NC40ads_H100_v5": 1,
        "Standard_NC80adis_H100_v5": 2,
    },
}

GPU_VM_SIZES: dict[str, GpuVmSize] = {
    name: GpuVmSize(name, sku, gpus) for sku, sizes in _GPUS_PER_SIZE.items() for name, gpus in sizes.items()
}
_BY_LOWER = {name.lower(): size for name, size in GPU_VM_SIZES.items()}


def gpu_vm_size(name: str) -> GpuVmSize | None:
    """The size called ``name`` (Azure compares VM size names case-insensitively), or None."""
    return _BY_LOWER.get(name.lower())
