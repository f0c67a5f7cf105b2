"""GPU sizing: memory of a model served by vLLM, the Azure GPU VM size that holds it, and the vLLM flags."""

from __future__ import annotations

from infra.catalog import get_model
from infra.sizing.core import (
    BYTES_PER_PARAMETER,
    DEFAULT_CONTEXT,
    OVERHEAD_FIXED_GB_PER_GPU,
    OVERHEAD_WEIGHT_FRACTION,
    KvCacheDtype,
    MemoryBreakdown,
    ModelDoesNotFitError,
    Precision,
    SizingInputError,
    SizingResult,
    VmFit,
    kv_cache_bytes,
    kv_cache_bytes_per_token,
    size_model,
    weights_bytes,
)
from infra.sizing.vm_sizes import VM_SIZES, GpuVmSize, UnknownVmSizeError, get_vm_size

__all__ = [
    "BYTES_PER_PARAMETER",
    "DEFAULT_CONTEXT",
    "OVERHEAD_FIXED_GB_PER_GPU",
    "OVERHEAD_WEIGHT_FRACTION",
    "VM_SIZES",
    "GpuVmSize",
    "KvCacheDtype",
    "MemoryBreakdown",
    "ModelDoesNotFitError",
    "Precision",
    "SizingInputError",
    "SizingResult",
    "UnknownVmSizeError",
    "VmFit",
    "get_vm_size",
    "kv_cache_bytes",
    "kv_cache_bytes_per_token",
    "size_catalogue_model",
    "size_model",
    "weights_bytes",
]


def size_catalogue_model(
    key: str,
    precision: Precision = "bf16",
    context: int | None = None,
    concurrency: int = 1,
    gpu_memory_utilization: float = 0.9,
    vm_size: str | None = None,
    *,
    kv_cache_dtype: KvCacheDtype = "auto",
    sliding_window_aware: bool = False,
) -> SizingResult:
    """:func:`size_model` for a catalogue model (``UnknownModelError`` for an unknown key)."""
    model = get_model(key)
    return size_model(
        model.architecture(),
        precision,
        context,
        concurrency,
        gpu_memory_utilization,
        vm_size,
        kv_cache_dtype=kv_cache_dtype,
        sliding_window_aware=sliding_window_aware,
        model_name=model.display_name,
    )
