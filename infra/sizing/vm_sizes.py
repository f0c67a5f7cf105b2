"""Azure VM sizes: the GPU sizes sizing chooses from, and the CPU sizes the stacks' system and user pools use.

The project's one table of VM sizes: the AKS GPU pools (``infra/config/cluster.py``) read the GPU sizes, and the
price table (``infra/cost/prices.yaml``, written by ``tools/prices/build_prices.py``) prices every size here.

Sources (checked for the names, vCPUs, RAM and GPUs per VM):
- the size lists of the NCasT4_v3, NVadsA10_v5, NC_A100_v4 and NCads_H100_v5 families in Microsoft's Aspire
  AKS node VM size table (``AksNodeVmSizes.cs``) and the Azure docs page of the NVadsA10 v5 series (which also
  gives 24 GiB per full A10 and shows that NV6/12/18ads hold 1/6, 1/3 and 1/2 of one, left out here);
- memory per GPU as the project's facts sheet records it: T4 16 GB, A10 24 GB, A100 80 GB, H100 NVL 94 GB;
- the CPU sizes: the Ddsv5 series size table on learn.microsoft.com (vCPUs and GiB of memory).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuVmSize:
    """An Azure VM size with whole NVIDIA GPUs."""

    name: str
    family: str
    gpu: str
    gpu_count: int
    gpu_memory_gb: float
    vcpus: int
    memory_gb: int
    #: bfloat16 needs compute capability 8.0; the T4 (7.5) serves 16-bit models in float16 instead.
    bf16: bool = True
    #: Share of each GPU's memory one pod may fill: 1 for a whole GPU or a MIG slice (the engine sees the slice as
    #: its whole device), ``1/replicas`` for a time-sliced GPU (every pod sees the whole card: infra.sizing.slices).
    memory_share: float = 1.0

    @property
    def total_gpu_memory_gb(self) -> float:
        return self.gpu_count * self.gpu_memory_gb


_T4 = ("NCasT4_v3", "NVIDIA T4", 16.0)
_A10 = ("NVadsA10_v5", "NVIDIA A10", 24.0)
_A100 = ("NC_A100_v4", "NVIDIA A100 PCIe", 80.0)
_H100 = ("NCads_H100_v5", "NVIDIA H100 NVL", 94.0)


def _size(name: str, kind: tuple[str, str, float], gpus: int, vcpus: int, memory_gb: int) -> GpuVmSize:
    family, gpu, gpu_memory = kind
    return GpuVmSize(name, family, gpu, gpus, gpu_memory, vcpus, memory_gb, bf16=kind is not _T4)


#: Every size, smallest first: by total GPU memory, then fewer GPUs, then fewer vCPUs. "Smallest that fits"
#: means the first in this order; prices are not compared (they vary by region and were not verified).
VM_SIZES: tuple[GpuVmSize, ...] = tuple(
    sorted(
        (
            _size("Standard_NC4as_T4_v3", _T4, 1, 4, 28),
            _size("Standard_NC8as_T4_v3", _T4, 1, 8, 56),
            _size("Standard_NC16as_T4_v3", _T4, 1, 16, 110),
            _size("Standard_NC64as_T4_v3", _T4, 4, 64, 440),
            _size("Standard_NV36ads_A10_v5", _A10, 1, 36, 440),
            _size("Standard_NV72ads_A10_v5", _A10, 2, 72, 880),
            _size("Standard_NC24ads_A100_v4", _A100, 1, 24, 220),
            _size("Standard_NC48ads_A100_v4", _A100, 2, 48, 440),
            _size("Standard_NC96ads_A100_v4", _A100, 4, 96, 880),
            _size("Standard_NC40ads_H100_v5", _H100, 1, 40, 320),
            _size("Standard_NC80adis_H100_v5", _H100, 2, 80, 640),
        ),
        key=lambda size: (size.total_gpu_memory_gb, size.gpu_count, size.vcpus),
    )
)

_BY_NAME = {size.name.lower(): size for size in VM_SIZES}


@dataclass(frozen=True)
class CpuVmSize:
    """An Azure VM size without GPUs: its shape, for the share of a node a CPU-only pod requests."""

    name: str
    vcpus: int
    memory_gib: int


#: The CPU sizes the stacks' pools use by default and their neighbours (the pools' defaults are Standard_D4ds_v5).
CPU_VM_SIZES: tuple[CpuVmSize, ...] = (
    CpuVmSize("Standard_D2ds_v5", 2, 8),
    CpuVmSize("Standard_D4ds_v5", 4, 16),
    CpuVmSize("Standard_D8ds_v5", 8, 32),
    CpuVmSize("Standard_D16ds_v5", 16, 64),
)

#: Every size the project knows, GPU then CPU, by name: what the price table must cover.
ALL_VM_SIZE_NAMES: tuple[str, ...] = tuple(size.name for size in VM_SIZES) + tuple(size.name for size in CPU_VM_SIZES)


class UnknownVmSizeError(LookupError):
    """A VM size that is not in the table; ``suggestions`` holds the close matches."""

    def __init__(self, name: str) -> None:
        self.name = name
        names = [size.name for size in VM_SIZES]
        self.suggestions = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(self.suggestions)}?" if self.suggestions else f"known: {', '.join(names)}"
        super().__init__(f"unknown GPU VM size '{name}' ({hint})")


def get_vm_size(name: str) -> GpuVmSize:
    """The VM size called ``name`` (case-insensitive, as Azure treats it)."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise UnknownVmSizeError(name) from None
