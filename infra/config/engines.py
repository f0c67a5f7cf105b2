"""Per-engine settings of a model (`vllm:`, `ollama:`, `onnx:`); the engine modules turn them into flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from infra.config.base import ConfigModel
from infra.config.images import ImageRef


class VllmSettings(ConfigModel):
    """vLLM server flags. Unset flags keep vLLM's own defaults."""

    max_model_len: int | None = Field(None, ge=128, description="`--max-model-len`: context length served.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="`--gpu-memory-utilization`: share of each GPU's memory vLLM may use."
    )
    tensor_parallel_size: int | None = Field(
        None, ge=1, description="`--tensor-parallel-size`; defaults to the GPU count."
    )
    max_num_seqs: int | None = Field(None, ge=1, description="`--max-num-seqs`: concurrent sequences.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field("auto", description="`--dtype`.")
    quantization: Literal["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"] | None = Field(
        None, description="`--quantization`, for pre-quantized checkpoints."
    )
    extra_args: list[str] = Field(default_factory=list, description="More vLLM flags, passed as given.")


class OnnxPrepare(ConfigModel):
    """A Job that downloads a Hugging Face model and converts it to the ONNX Runtime GenAI format, once."""

    source: str = Field(
        min_length=1,
        description="Hugging Face repository to convert; a repository already in ORT GenAI format (e.g. one "
        "prepared for Foundry Local) is used as it is.",
    )
    precision: Literal["int4", "fp16", "fp32"] = Field("int4", description="Precision of the converted model.")
    image: ImageRef = Field(
        description="The preparation image (servers/onnx/Dockerfile.j2 rendered with build_tools: true)."
    )


class OnnxSettings(ConfigModel):
    """ONNX Runtime GenAI server settings (servers/onnx)."""

    device: Literal["cpu", "cuda"] = Field("cpu", description="Execution provider; cpu is CPU-only.")
    max_concurrency: int = Field(1, ge=1, description="Generations at once (`SLM_ONNX_MAX_CONCURRENCY`).")
    max_queue: int = Field(16, ge=0, description="Requests waiting beyond that; more get 429 (`SLM_ONNX_MAX_QUEUE`).")
    context_length: int | None = Field(None, ge=128, description="Context served; the model's own when unset.")
    prepare: OnnxPrepare | None = Field(
        None, description="Convert the model in a Job before the server starts; unset: the model is already there."
    )


#: Modelfile PARAMETER names Ollama documents.
OLLAMA_PARAMETERS = (
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "num_ctx",
    "num_predict",
    "repeat_last_n",
    "repeat_penalty",
    "seed",
    "stop",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
)


class OllamaModelfile(ConfigModel):
    """A custom model built at start-up with `ollama create` from a Modelfile (templates/ollama/Modelfile.j2)."""

    system: str | None = Field(None, description="System prompt (Modelfile `SYSTEM`).")
    parameters: dict[str, float | int | str] = Field(
        default_factory=dict, description="Modelfile `PARAMETER`s, e.g. temperature, num_ctx, top_p, stop."
    )

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, value: dict[str, float | int | str]) -> dict[str, float | int | str]:
        for key in value:
            if key not in OLLAMA_PARAMETERS:
                raise ValueError(
                    f"unknown Modelfile parameter '{key}' (expected one of {', '.join(OLLAMA_PARAMETERS)})"
                )
        return value


class OllamaSettings(ConfigModel):
    """Ollama server settings."""

    keep_alive: str = Field(
        "24h", pattern=r"^-?\d+(ms|s|m|h)?$", description="`OLLAMA_KEEP_ALIVE`: how long a model stays loaded."
    )
    num_parallel: int = Field(4, ge=1, description="`OLLAMA_NUM_PARALLEL`: requests served at once per model.")
    max_queue: int = Field(64, ge=1, description="`OLLAMA_MAX_QUEUE`: requests queued before Ollama answers 503.")
    modelfile: OllamaModelfile | None = Field(
        None, description="Build a custom model (system prompt, parameters) on top of `modelId`."
    )
