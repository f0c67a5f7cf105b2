"""GPU memory sizing for serving a model with vLLM, and the smallest Azure GPU VM that holds it.

Memory of one replica (all figures in GB = 10^9 bytes):

    weights  = parameters x bytes per parameter (bf16/fp16 2, fp8/int8 1, int4 0.5)
    KV cache = 2 (K and V) x layers x KV heads x head dim x KV bytes x context x concurrent sequences
    overhead = 1.0 GB per GPU (CUDA context, NCCL/cuBLAS workspaces, CUDA graphs)
               + 20 % of the weights (activation peak of vLLM's profiling run, allocator fragmentation)

With tensor parallelism t, weights and KV cache are split over t GPUs, and each GPU must hold its share within
card memory x ``gpu_memory_utilization`` (the share of each GPU vLLM may use). The overhead figures are an
assumption, calibrated on the "add ~20 % to the weights" rule of thumb of public GPU-memory guides (see
docs/sizing.md); they are not measured here.

The KV cache is the full-attention upper bound (every layer caches the whole context), the formula of issue 6.
For sliding-window models (Gemma 3) ``sliding_window_aware=True`` caps the local layers at their window, which
is closer to what engines with a hybrid KV cache allocate.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from infra.catalog.architecture import ModelArchitecture
from infra.sizing.vm_sizes import VM_SIZES, GpuVmSize, get_vm_size

Precision = Literal["bf16", "fp16", "fp8", "int8", "int4"]
KvCacheDtype = Literal["auto", "fp8"]

GB = 1e9
BYTES_PER_PARAMETER: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
#: "auto" keeps the cache in the model's 16-bit dtype (vLLM's default, also for quantized weights).
KV_BYTES: dict[str, int] = {"auto": 2, "fp8": 1}
#: Per-GPU allowance for what is not weights, KV cache or activations (assumption, see module docstring).
OVERHEAD_FIXED_GB_PER_GPU = 1.0
#: Activation and fragmentation allowance as a share of the weights (assumption, see module docstring).
OVERHEAD_WEIGHT_FRACTION = 0.20
#: Context served when the caller gives none (capped at the model's native context).
DEFAULT_CONTEXT = 8192
#: Tensor-parallel sizes considered, smallest first.
TP_SIZES = (1, 2, 4, 8)


class SizingInputError(ValueError):
    """Arguments sizing cannot work with (unknown precision, a context beyond the model's, …)."""


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class MemoryBreakdown(_Result):
    """Memory of one replica over all its GPUs, in GB."""

    tensor_parallel_size: int
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float
    total_gb: float
    per_gpu_gb: float


class VmFit(_Result):
    """Whether the model fits one VM size, and with what tensor parallelism."""

    vm_size: str
    gpu: str
    gpus_per_vm: int
    gpu_memory_gb: float
    tensor_parallel_size: int
    needed_per_gpu_gb: float
    available_per_gpu_gb: float
    headroom_gb: float
    fits: bool


class SizingResult(_Result):
    """The memory breakdown, where the model fits, the chosen VM size and the vLLM flags."""

    model: str
    precision: Precision
    kv_cache_dtype: KvCacheDtype
    context: int
    concurrency: int
    gpu_memory_utilization: float
    sliding_window_aware: bool
    kv_cache_bytes_per_token: int
    breakdown: MemoryBreakdown
    fits_on: list[VmFit]
    choice: VmFit | None
    vllm_flags: list[str]
    vllm_settings: dict[str, int | float | str]
    notes: list[str]

    @property
    def fits(self) -> bool:
        return self.choice is not None


class ModelDoesNotFitError(Exception):
    """The model does not fit the VM size the stack fixes (or any VM size): needed vs available, in GB."""

    def __init__(self, message: str, result: SizingResult, fit: VmFit) -> None:
        super().__init__(message)
        self.result = result
        self.fit = fit
        self.needed_gb = fit.needed_per_gpu_gb
        self.available_gb = fit.available_per_gpu_gb


def kv_cache_bytes_per_token(arch: ModelArchitecture, kv_cache_dtype: KvCacheDtype = "auto") -> int:
    """Bytes of K and V one token occupies across all layers (full attention)."""
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * KV_BYTES[kv_cache_dtype]


def kv_cache_bytes(
    arch: ModelArchitecture,
    context: int,
    concurrency: int,
    kv_cache_dtype: KvCacheDtype = "auto",
    sliding_window_aware: bool = False,
) -> int:
    """KV cache of ``concurrency`` sequences of ``context`` tokens each."""
    per_layer_token = 2 * arch.kv_heads * arch.head_dim * KV_BYTES[kv_cache_dtype]
    if sliding_window_aware and arch.sliding_window is not None:
        global_layers = arch.global_layers
        local_layers = arch.layers - global_layers
        tokens = global_layers * context + local_layers * min(context, arch.sliding_window)
    else:
        tokens = arch.layers * context
    return per_layer_token * tokens * concurrency


def weights_bytes(arch: ModelArchitecture, precision: Precision) -> float:
    return arch.params * 1e9 * BYTES_PER_PARAMETER[precision]


def _tp_sizes(arch: ModelArchitecture, gpus: int) -> list[int]:
    """Powers of two up to ``gpus`` that divide the attention heads and the KV heads."""
    sizes = []
    for size in TP_SIZES:
        if size > gpus or arch.kv_heads % size:
            continue
        if arch.attention_heads is not None and arch.attention_heads % size:
            continue
        sizes.append(size)
    return sizes


def _needed_per_gpu(weights: float, kv: float, tp: int) -> float:
    return (weights + kv + OVERHEAD_WEIGHT_FRACTION * weights) / tp + OVERHEAD_FIXED_GB_PER_GPU * GB


def _fit(vm: GpuVmSize, arch: ModelArchitecture, weights: float, kv: float, utilization: float) -> VmFit:
    available = vm.gpu_memory_gb * GB * utilization * vm.memory_share
    sizes = _tp_sizes(arch, vm.gpu_count)
    chosen = next((tp for tp in sizes if _needed_per_gpu(weights, kv, tp) <= available), sizes[-1])
    needed = _needed_per_gpu(weights, kv, chosen)
    return VmFit(
        vm_size=vm.name,
        gpu=vm.gpu,
        gpus_per_vm=vm.gpu_count,
        gpu_memory_gb=vm.gpu_memory_gb,
        tensor_parallel_size=chosen,
        needed_per_gpu_gb=round(needed / GB, 3),
        available_per_gpu_gb=round(available / GB, 3),
        headroom_gb=round((available - needed) / GB, 3),
        fits=needed <= available,
    )


def _breakdown(weights: float, kv: float, tp: int) -> MemoryBreakdown:
    overhead = OVERHEAD_FIXED_GB_PER_GPU * GB * tp + OVERHEAD_WEIGHT_FRACTION * weights
    total = weights + kv + overhead
    return MemoryBreakdown(
        tensor_parallel_size=tp,
        weights_gb=round(weights / GB, 3),
        kv_cache_gb=round(kv / GB, 3),
        overhead_gb=round(overhead / GB, 3),
        total_gb=round(total / GB, 3),
        per_gpu_gb=round(total / tp / GB, 3),
    )


def _check_inputs(
    arch: ModelArchitecture,
    precision: str,
    context: int | None,
    concurrency: int,
    utilization: float,
    kv_cache_dtype: str,
) -> int:
    if precision not in BYTES_PER_PARAMETER:
        raise SizingInputError(f"unknown precision '{precision}' (expected {', '.join(get_args(Precision))})")
    if kv_cache_dtype not in KV_BYTES:
        raise SizingInputError(f"unknown KV cache dtype '{kv_cache_dtype}' (expected auto, fp8)")
    if concurrency < 1:
        raise SizingInputError(f"concurrency must be at least 1, not {concurrency}")
    if not 0 < utilization <= 1:
        raise SizingInputError(f"gpu_memory_utilization must be in (0, 1], not {utilization}")
    if context is None:
        return min(arch.context_length, DEFAULT_CONTEXT)
    if context < 128:
        raise SizingInputError(f"context must be at least 128 tokens, not {context}")
    if context > arch.context_length:
        raise SizingInputError(f"context {context} exceeds the model's native context length {arch.context_length}")
    return context


def _flags(
    context: int,
    concurrency: int,
    utilization: float,
    precision: Precision,
    kv_dtype: KvCacheDtype,
    fit: VmFit,
    vm: GpuVmSize,
) -> tuple[list[str], dict[str, int | float | str], list[str]]:
    settings: dict[str, int | float | str] = {
        "max_model_len": context,
        # A time-sliced GPU: vLLM sees the whole card and may fill only its pod's share of it.
        "gpu_memory_utilization": round(utilization * vm.memory_share, 3),
        "max_num_seqs": concurrency,
        "tensor_parallel_size": fit.tensor_parallel_size,
    }
    notes = []
    if precision == "fp16" or (precision == "bf16" and not vm.bf16):
        settings["dtype"] = "float16"
        if precision == "bf16":
            notes.append(f"{vm.gpu} has no bfloat16 support: the model is served in float16 (same size)")
    if kv_dtype == "fp8":
        settings["kv_cache_dtype"] = "fp8"
    flags: list[str] = []
    for key, value in settings.items():
        if key == "tensor_parallel_size" and value == 1:
            continue
        flags += [f"--{key.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    return flags, settings, notes


def size_model(
    arch: ModelArchitecture,
    precision: Precision = "bf16",
    context: int | None = None,
    concurrency: int = 1,
    gpu_memory_utilization: float = 0.9,
    vm_size: str | GpuVmSize | None = None,
    *,
    kv_cache_dtype: KvCacheDtype = "auto",
    sliding_window_aware: bool = False,
    model_name: str = "model",
) -> SizingResult:
    """Size ``arch`` for vLLM; choose the smallest VM size that fits, or check the one given.

    ``vm_size`` may be a shape rather than a name: one slice of a shared GPU (:mod:`infra.sizing.slices`).

    ``context`` defaults to the model's native context capped at 8192 tokens; ``concurrency`` is the number of
    sequences held at full context at once (``--max-num-seqs``). Raises :class:`ModelDoesNotFitError` when the
    model does not fit ``vm_size`` (or, without one, any VM size); the error carries the full result.
    """
    context = _check_inputs(arch, precision, context, concurrency, gpu_memory_utilization, kv_cache_dtype)
    fixed = get_vm_size(vm_size) if isinstance(vm_size, str) else vm_size
    weights = weights_bytes(arch, precision)
    kv = float(kv_cache_bytes(arch, context, concurrency, kv_cache_dtype, sliding_window_aware))
    fits_on = [_fit(vm, arch, weights, kv, gpu_memory_utilization) for vm in VM_SIZES]
    if fixed is not None:
        target_vm = fixed
        target = _fit(fixed, arch, weights, kv, gpu_memory_utilization)
        choice = target if target.fits else None
    else:
        choice = next((fit for fit in fits_on if fit.fits), None)
        target = choice or fits_on[-1]
        target_vm = get_vm_size(target.vm_size)
    flags, settings, notes = _flags(
        context, concurrency, gpu_memory_utilization, precision, kv_cache_dtype, target, target_vm
    )
    if precision in ("fp8", "int8", "int4"):
        notes.append(f"{precision} assumes a pre-quantized checkpoint; vLLM reads the method from its config")
    if arch.sliding_window is not None and not sliding_window_aware:
        notes.append(
            f"KV cache is the full-attention upper bound; {arch.layers - arch.global_layers} of {arch.layers} "
            f"layers only attend over a {arch.sliding_window}-token window"
        )
    result = SizingResult(
        model=model_name,
        precision=precision,
        kv_cache_dtype=kv_cache_dtype,
        context=context,
        concurrency=concurrency,
        gpu_memory_utilization=gpu_memory_utilization,
        sliding_window_aware=sliding_window_aware,
        kv_cache_bytes_per_token=kv_cache_bytes_per_token(arch, kv_cache_dtype),
        breakdown=_breakdown(weights, kv, target.tensor_parallel_size),
        fits_on=fits_on,
        choice=choice,
        vllm_flags=flags,
        vllm_settings=settings,
        notes=notes,
    )
    if choice is None:
        raise ModelDoesNotFitError(_does_not_fit(result, target, fixed is None), result, target)
    return result


def _does_not_fit(result: SizingResult, fit: VmFit, any_size: bool) -> str:
    parts = result.breakdown
    tp = fit.tensor_parallel_size
    gpus = "1 GPU" if tp == 1 else f"{tp} GPUs (tensor parallelism {tp})"
    sequences = "1 sequence" if result.concurrency == 1 else f"{result.concurrency} sequences"
    where = f"the largest GPU VM size, {fit.vm_size}," if any_size else fit.vm_size
    share = fit.available_per_gpu_gb / (fit.gpu_memory_gb * result.gpu_memory_utilization)
    shared = f" x its share {share:.3g}" if share < 0.999 else ""
    return (
        f"{result.model} ({result.precision}, context {result.context}, {sequences}) needs "
        f"{fit.needed_per_gpu_gb:.1f} GB per GPU (weights {parts.weights_gb:.1f} + KV cache {parts.kv_cache_gb:.1f} "
        f"+ overhead {parts.overhead_gb:.1f} = {parts.total_gb:.1f} GB on {gpus}), but {where} offers "
        f"{fit.available_per_gpu_gb:.1f} GB per GPU ({fit.gpu} {fit.gpu_memory_gb:g} GB x gpu-memory-utilization "
        f"{result.gpu_memory_utilization:g}{shared}): short by {-fit.headroom_gb:.1f} GB"
    )
