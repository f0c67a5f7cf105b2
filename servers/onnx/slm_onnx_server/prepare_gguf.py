"""Turn a GGUF file into a Hugging Face folder the onnxruntime-genai model builder converts (FP32 weights).

The builder's own GGUF loader reads only F16/F32 tensors: a quantised file (Q4_1, Q8_0 …) fails with a shape
error. transformers reads any GGUF type the `gguf` package can dequantise, so the file goes through it: weights
dequantised to FP32, the tokenizer (and its chat template) rebuilt from the file's metadata, both saved as a
folder. Needs torch, transformers, gguf and accelerate (servers/onnx/requirements-build.txt); imported lazily
so that the server image, which has none of them, can still import slm_onnx_server.prepare.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: GGML tensor types that hold plain floating-point weights (gguf.GGMLQuantizationType names).


class GgufError(Exception):
    """The GGUF file cannot be read or dequantised."""


def dequantise(gguf_file: Path, folder: Path) -> None:
    """Write a Hugging Face folder (config, FP32 safetensors, tokenizer, chat template) for ``gguf_file``."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as error:
        raise GgufError(f"dequantising a GGUF file needs {error.name} (servers/onnx/requirements-build.txt)") from None
    where, name = str(gguf_file.parent), gguf_file.name
    try:
        # dequantize=True: plain FP32 tensors and no GGUF quantizer left on the model. Without it transformers
        # keeps the weights in their GGUF blocks and refuses to save the model ("not serializable").
        quantization = GgufConfig(dequantize=True)
        model = AutoModelForCausalLM.from_pretrained(
            where, gguf_file=name, dtype=torch.float32, quantization_config=quantization
        )
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise GgufError(f"{gguf_file}: transformers cannot load it ({error})") from None
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _name_the_architecture(folder / "config.json", type(model).__name__)


def _name_the_architecture(config_path: Path, architecture: str) -> None:
    # The builder picks its exporter from config.json's "architectures"; a config rebuilt from GGUF metadata
    # may lack it.
    config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    if not config.get("architectures"):
        config["architectures"] = [architecture]
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
