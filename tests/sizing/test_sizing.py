"""Sizing worked examples, checked against figures published by others (source in each comment)."""

from __future__ import annotations

import pytest

from infra.catalog import ModelArchitecture, get_model
from infra.sizing import (
    VM_SIZES,
    ModelDoesNotFitError,
    SizingInputError,
    UnknownVmSizeError,
    get_vm_size,
    kv_cache_bytes,
    kv_cache_bytes_per_token,
    size_catalogue_model,
    size_model,
    weights_bytes,
)

KIB, MIB = 1024, 1024**2


def _llama(layers: int, params: float) -> ModelArchitecture:
    """Llama 3.x geometry: 8 KV heads of 128 dimensions (config.json of Llama 3.1 8B/70B/405B)."""
    return ModelArchitecture(params=params, layers=layers, kv_heads=8, head_dim=128, context_length=131072)


def test_phi_4_mini_weights_in_bf16() -> None:
    # Issue 6's reference figure: Phi-4-mini weights in bf16 ≈ 7.7 GB (3.836B parameters x 2 bytes).
    arch = get_model("phi-4-mini-instruct").architecture()
    assert weights_bytes(arch, "bf16") / 1e9 == pytest.approx(7.7, abs=0.05)
    assert weights_bytes(arch, "int4") / 1e9 == pytest.approx(7.7 / 4, abs=0.02)


def test_weights_per_gpu_as_nvidia_nim_computes_them() -> None:
    # NVIDIA NIM for LLMs, "Troubleshooting GPU Memory Out-of-Memory Errors": Llama 3.1 8B in BF16 at TP 1 is
    # 8 billion x 2 bytes = 16 GB; Llama 3.3 70B in BF16 at TP 4 is 70 billion x 2 bytes / 4 = 35 GB per GPU.
    assert weights_bytes(_llama(32, 8.0), "bf16") / 1e9 == pytest.approx(16.0)
    assert weights_bytes(_llama(80, 70.0), "bf16") / 4 / 1e9 == pytest.approx(35.0)
    assert weights_bytes(_llama(80, 70.0), "fp8") / 1e9 == pytest.approx(70.0)


def test_overhead_matches_the_twenty_percent_rule() -> None:
    # BentoML LLM inference handbook, "Calculating GPU memory for serving LLMs": 70B in FP16 with 20 % overhead
    # needs 168 GB. Our overhead is 20 % of the weights plus 1 GB per GPU.
    result = size_model(_llama(80, 70.0), "fp16", context=128, vm_size=None, gpu_memory_utilization=1.0)
    assert result.breakdown.weights_gb + result.breakdown.overhead_gb == pytest.approx(
        168 + result.breakdown.tensor_parallel_size, abs=0.01
    )


def test_kv_cache_per_token_of_llama_3_2_1b() -> None:
    # meta-llama/Llama-3.2-1B-Instruct config.json: 16 layers, 8 KV heads, head_dim 64; bf16 cache:
    # 2 x 16 x 8 x 64 x 2 bytes = 32 KiB per token.
    arch = get_model("llama-3.2-1b-instruct").architecture()
    assert kv_cache_bytes_per_token(arch) == 32 * KIB
    assert kv_cache_bytes_per_token(arch, "fp8") == 16 * KIB


def test_kv_cache_of_published_llama_figures() -> None:
    # runlocalai.co glossary, "KV Cache": Llama 3.3 70B at FP16 costs about 320 MB per 1K tokens of context.
    assert kv_cache_bytes(_llama(80, 70.0), context=1024, concurrency=1) == 320 * MIB
    # tooljolt.com, "Llama 3.1 405B KV-Cache Calculator": ~504.0 KB per token at FP16 (126 layers).
    assert kv_cache_bytes_per_token(_llama(126, 405.0)) == 504 * KIB


def test_kv_cache_scales_with_context_and_sequences() -> None:
    arch = get_model("qwen3-8b").architecture()
    # Qwen/Qwen3-8B config.json: 36 layers, 8 KV heads, head_dim 128 -> 144 KiB per token in bf16.
    assert kv_cache_bytes_per_token(arch) == 144 * KIB
    assert kv_cache_bytes(arch, 8192, 16) == 144 * KIB * 8192 * 16


def test_sliding_window_refinement_for_gemma_3() -> None:
    # google/gemma-3-1b-it config.json: 26 layers, 1 KV head of 256, sliding_window 512, pattern 6 (4 global
    # layers). The refinement caps the 22 local layers at 512 tokens.
    arch = get_model("gemma-3-1b-it").architecture()
    per_layer_token = 2 * 1 * 256 * 2
    assert kv_cache_bytes(arch, 8192, 1) == per_layer_token * 26 * 8192
    assert kv_cache_bytes(arch, 8192, 1, sliding_window_aware=True) == per_layer_token * (4 * 8192 + 22 * 512)
    upper = size_catalogue_model("gemma-3-27b-it", context=32768, concurrency=8)
    refined = size_catalogue_model("gemma-3-27b-it", context=32768, concurrency=8, sliding_window_aware=True)
    assert refined.breakdown.kv_cache_gb < upper.breakdown.kv_cache_gb / 4
    assert any("upper bound" in note for note in upper.notes)


def test_fourteen_b_in_bf16_on_a_t4_fails_with_needed_and_available() -> None:
    with pytest.raises(ModelDoesNotFitError) as raised:
        size_catalogue_model("qwen3-14b", "bf16", context=8192, vm_size="Standard_NC4as_T4_v3")
    error = raised.value
    # 14.8B x 2 bytes = 29.6 GB of weights alone; a T4 offers 16 GB x 0.9 = 14.4 GB.
    assert error.available_gb == pytest.approx(14.4)
    assert error.needed_gb > 29.6
    message = str(error)
    assert f"needs {error.needed_gb:.1f} GB per GPU" in message
    assert "Standard_NC4as_T4_v3 offers 14.4 GB per GPU" in message
    assert f"short by {error.needed_gb - 14.4:.1f} GB" in message
    assert error.result.breakdown.weights_gb == pytest.approx(29.6)


def test_a_fixed_vm_size_that_fits_is_kept() -> None:
    result = size_catalogue_model("qwen3-14b", "bf16", vm_size="standard_nc24ads_a100_v4")
    assert result.choice is not None
    assert result.choice.vm_size == "Standard_NC24ads_A100_v4"
    assert result.choice.tensor_parallel_size == 1


@pytest.mark.parametrize(
    ("key", "precision", "context", "concurrency", "vm_size", "tp"),
    [
        # 1B bf16 weights 2.0 GB + 0.9 GB KV: one T4.
        ("gemma-3-1b-it", "bf16", 8192, 4, "Standard_NC4as_T4_v3", 1),
        # 8.2B in int4 (4.1 GB) with 2 x 8k sequences (2.4 GB KV): one T4.
        ("qwen3-8b", "int4", 8192, 2, "Standard_NC4as_T4_v3", 1),
        # 14.8B in bf16 needs ~38 GB: too big for one A10, fits two A10s with tensor parallelism 2.
        ("qwen3-14b", "bf16", 8192, 1, "Standard_NV72ads_A10_v5", 2),
        # 27.4B in bf16 (54.9 GB) + 16.6 GB KV + overhead: more than an A100 80GB at 0.9, fits one H100 NVL.
        ("gemma-3-27b-it", "bf16", 8192, 4, "Standard_NC40ads_H100_v5", 1),
    ],
)
def test_smallest_vm_size(key: str, precision: str, context: int, concurrency: int, vm_size: str, tp: int) -> None:
    result = size_catalogue_model(key, precision, context, concurrency)  # type: ignore[arg-type]
    assert result.choice is not None
    assert (result.choice.vm_size, result.choice.tensor_parallel_size) == (vm_size, tp)
    smaller = VM_SIZES[: [size.name for size in VM_SIZES].index(vm_size)]
    assert not any(fit.fits for fit in result.fits_on if fit.vm_size in {size.name for size in smaller})


def test_tensor_parallelism_divides_the_heads() -> None:
    # Gemma 3 1B has a single KV head: no tensor parallelism anywhere.
    result = size_catalogue_model("gemma-3-1b-it")
    assert {fit.tensor_parallel_size for fit in result.fits_on} == {1}
    # A 7-head model on four T4s: only tensor parallelism 1 divides 7 heads.
    odd = ModelArchitecture(params=30, layers=30, kv_heads=7, head_dim=128, context_length=8192, attention_heads=28)
    fit = next(f for f in size_model(odd, "int4").fits_on if f.vm_size == "Standard_NC64as_T4_v3")
    assert fit.tensor_parallel_size == 1


def test_vllm_flags() -> None:
    result = size_catalogue_model("qwen3-14b", "bf16", 8192, 1)
    assert result.vllm_flags == [
        "--max-model-len",
        "8192",
        "--gpu-memory-utilization",
        "0.9",
        "--max-num-seqs",
        "1",
        "--tensor-parallel-size",
        "2",
    ]
    assert result.vllm_settings["tensor_parallel_size"] == 2
    # A T4 has no bfloat16: the same 2-byte weights are served as float16.
    t4 = size_catalogue_model("qwen3-0.6b", "bf16", 4096, 8, gpu_memory_utilization=0.85)
    assert t4.choice is not None and t4.choice.vm_size == "Standard_NC4as_T4_v3"
    assert t4.vllm_flags[-2:] == ["--dtype", "float16"]
    assert "--gpu-memory-utilization" in t4.vllm_flags and "0.85" in t4.vllm_flags
    fp8 = size_catalogue_model("qwen3-8b", "bf16", 8192, 4, kv_cache_dtype="fp8")
    assert fp8.vllm_flags[-2:] == ["--kv-cache-dtype", "fp8"]


def test_default_context_is_capped_at_8192() -> None:
    assert size_catalogue_model("phi-4-mini-instruct").context == 8192
    assert size_catalogue_model("phi-4-mini-instruct", context=131072).context == 131072


def test_bad_inputs() -> None:
    with pytest.raises(SizingInputError, match="native context length 32768"):
        size_catalogue_model("qwen3-8b", context=65536)
    with pytest.raises(SizingInputError, match="unknown precision"):
        size_catalogue_model("qwen3-8b", "int3")  # type: ignore[arg-type]
    with pytest.raises(SizingInputError, match="concurrency"):
        size_catalogue_model("qwen3-8b", concurrency=0)
    with pytest.raises(UnknownVmSizeError) as raised:
        size_catalogue_model("qwen3-8b", vm_size="Standard_NC4as_T4")
    assert "Standard_NC4as_T4_v3" in raised.value.suggestions


def test_nothing_fits_names_the_largest_size() -> None:
    with pytest.raises(ModelDoesNotFitError, match="the largest GPU VM size, Standard_NC96ads_A100_v4"):
        size_catalogue_model("gemma-3-27b-it", "bf16", 131072, 64)


def test_vm_table() -> None:
    # Names and GPUs per VM: Microsoft's AKS node VM size table (Aspire) and the Azure NVadsA10 v5 page.
    counts = {size.name: size.gpu_count for size in VM_SIZES}
    assert counts == {
        "Standard_NC4as_T4_v3": 1,
        "Standard_NC8as_T4_v3": 1,
        "Standard_NC16as_T4_v3": 1,
        "Standard_NC64as_T4_v3": 4,
        "Standard_NV36ads_A10_v5": 1,
        "Standard_NV72ads_A10_v5": 2,
        "Standard_NC24ads_A100_v4": 1,
        "Standard_NC48ads_A100_v4": 2,
        "Standard_NC96ads_A100_v4": 4,
        "Standard_NC40ads_H100_v5": 1,
        "Standard_NC80adis_H100_v5": 2,
    }
    assert get_vm_size("Standard_NC40ads_H100_v5").gpu_memory_gb == 94
    assert not get_vm_size("Standard_NC8as_T4_v3").bf16
    totals = [size.total_gpu_memory_gb for size in VM_SIZES]
    assert totals == sorted(totals)
