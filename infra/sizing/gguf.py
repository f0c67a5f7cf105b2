"""Memory of a GGUF model served by llama.cpp: weights by quantisation type, plus the KV cache of its context.

Bits per weight, from the pinned llama.cpp sources (vendored in llama-cpp-python 0.3.36, llama.cpp b11312):

- Single types: a block's bytes over its weights, from ``ggml/src/ggml.c`` (``type_traits``: ``blck_size``,
  ``type_size``): Q4_0 18 B / 32 = 4.5, Q4_1 20 / 32 = 5, Q5_0 22 / 32 = 5.5, Q5_1 24 / 32 = 6, Q8_0 34 / 32 = 8.5,
  the K-quants over 256 weights (Q2_K 84 → 2.625, Q3_K 110 → 3.4375, Q4_K 144 → 4.5, Q5_K 176 → 5.5,
  Q6_K 210 → 6.5625), F16 and BF16 16, F32 32; the IQ types as ``tools/quantize/quantize.cpp`` states them.
- Mixes (``_S``, ``_M``, ``_L``: some tensors kept at a higher type) have no single size: ``quantize.cpp``'s
  ``QUANT_OPTIONS`` gives the file size of Llama-3-8B (8.03 B parameters) per mix, in GiB; bits per weight
  = size x 2^30 x 8 / 8.03e9 (Q4_K_M 4.58G → 4.90).

The file name says the type (``…-Q4_K_M.gguf``, ``….Q4_1.gguf``): :func:`gguf_type` reads it.
"""

from __future__ import annotations

import re

from infra.catalog.architecture import ModelArchitecture

_LLAMA3_8B_PARAMS = 8.03e9


def _mix(gib: float) -> float:
    return round(gib * 2**30 * 8 / _LLAMA3_8B_PARAMS, 3)


#: Bits per weight of each GGUF quantisation type (see the module's docstring for the sources).
BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_1": 6.0,
    "Q5_0": 5.5,
    "Q5_K": 5.5,
    "Q4_1": 5.0,
    "Q4_0": 4.5,
    "Q4_K": 4.5,
    "Q3_K": 3.4375,
    "Q2_K": 2.625,
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.25,
    "IQ3_M": 3.66,
    "IQ3_S": 3.44,
    "IQ3_XS": 3.3,
    "IQ3_XXS": 3.06,
    "IQ2_M": 2.7,
    "IQ2_S": 2.5,
    "IQ2_XS": 2.31,
    "IQ2_XXS": 2.06,
    "IQ1_M": 1.75,
    "IQ1_S": 1.56,
    "Q5_K_M": _mix(5.33),
    "Q5_K_S": _mix(5.21),
    "Q4_K_M": _mix(4.58),
    "Q4_K_S": _mix(4.37),
    "Q3_K_L": _mix(4.03),
    "Q3_K_M": _mix(3.74),
    "Q3_K_S": _mix(3.41),
    "Q2_K_S": _mix(2.96),
}
_TYPE_IN_NAME = re.compile(
    r"(?:^|[-_.])(" + "|".join(sorted(map(re.escape, BITS_PER_WEIGHT), key=len, reverse=True)) + r")(?=[-_.])",
    re.IGNORECASE,
)
#: Bytes per K or V element of llama.cpp's default KV cache (F16).
KV_BYTES = 2
#: Compute buffers and the runtime beside weights and cache: a fixed share, as vLLM's sizing allows.
OVERHEAD_FRACTION = 0.1
OVERHEAD_FIXED_BYTES = 256 * 2**20


def gguf_type(file_name: str) -> str | None:
    """The quantisation type a GGUF file name states (``Qwen3-0.6B-Q8_0.gguf`` → ``Q8_0``), or ``None``."""
    match = _TYPE_IN_NAME.search(file_name)
    return match.group(1).upper() if match else None


def weights_bytes(params_billion: float, quantisation: str) -> float:
    """Bytes the weights of a ``params_billion`` model take at ``quantisation``."""
    try:
        bits = BITS_PER_WEIGHT[quantisation.upper()]
    except KeyError:
        raise ValueError(f"unknown GGUF type '{quantisation}' (known: {', '.join(BITS_PER_WEIGHT)})") from None
    return params_billion * 1e9 * bits / 8


def memory_bytes(arch: ModelArchitecture, quantisation: str, ctx_size: int) -> float:
    """Memory llama-server needs: weights, an F16 KV cache of ``ctx_size`` tokens (all slots), overhead."""
    weights = weights_bytes(arch.params, quantisation)
    kv = 2 * arch.layers * arch.kv_heads * arch.head_dim * KV_BYTES * ctx_size
    return (weights + kv) * (1 + OVERHEAD_FRACTION) + OVERHEAD_FIXED_BYTES
