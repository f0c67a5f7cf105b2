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

from infra.sizing.vm_sizes import VM_SIZES


@dataclass(frozen=True)
class GpuSku:
    """One GPU model as Azure sells it."""

    family: str
    gpu: str
    memory_gb_per_gpu: int


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


# One table for the whole project: sizing's (infra/sizing/vm_sizes.py), seen here as GPU SKUs and counts.
_SKUS = {size.family: GpuSku(size.family, size.gpu, int(size.gpu_memory_gb)) for size in VM_SIZES}
GPU_VM_SIZES: dict[str, GpuVmSize] = {
    size.name: GpuVmSize(size.name, _SKUS[size.family], size.gpu_count) for size in VM_SIZES
}
T4, A10, A100, H100 = (_SKUS[family] for family in ("NCasT4_v3", "NVadsA10_v5", "NC_A100_v4", "NCads_H100_v5"))
_BY_LOWER = {name.lower(): size for name, size in GPU_VM_SIZES.items()}


def gpu_vm_size(name: str) -> GpuVmSize | None:
    """The size called ``name`` (Azure compares VM size names case-insensitively), or None."""
    return _BY_LOWER.get(name.lower())
