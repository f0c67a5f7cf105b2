"""Per-engine settings of a model (`vllm:`, `ollama:`, `onnx:`); the engine modules turn them into flags."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from infra.config.base import ConfigModel
from infra.config.images import ImageRef
from infra.config.k8s_names import HF_REPO_ID, refuse
from infra.config.names import ContainerText


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
    extra_args: list[ContainerText] = Field(
        default_factory=list,
        description="More vLLM flags, passed as given; a flag the engine sets already (`--host`, `--port`, "
        "`--served-model-name`, `--max-model-len` …) is refused: set its key instead.",
    )


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

    @field_validator("source")
    @classmethod
    def _repository_id(cls, value: str) -> str:
        return refuse(HF_REPO_ID, value)


class OnnxSettings(ConfigModel):
    """ONNX Runtime GenAI server settings (servers/onnx)."""

    device: Literal["cpu", "cuda"] = Field("cpu", description="Execution provider; cpu is CPU-only.")
    max_concurrency: int = Field(1, ge=1, description="Generations at once (`SLM_ONNX_MAX_CONCURRENCY`).")
    max_queue: int = Field(16, ge=0, description="Requests waiting beyond that; more get 429 (`SLM_ONNX_MAX_QUEUE`).")
    context_length: int | None = Field(None, ge=128, description="Context served; the model's own when unset.")
    prepare: OnnxPrepare | None = Field(
        None, description="Convert the model in a Job before the server starts; unset: the model is already there."
    )


#: Modelfile PARAMETER names Ollama documents, and the type of each value.
OLLAMA_PARAMETER_TYPES: dict[str, type] = {
    "mirostat": int,
    "mirostat_eta": float,
    "mirostat_tau": float,
    "num_ctx": int,
    "num_predict": int,
    "repeat_last_n": int,
    "repeat_penalty": float,
    "seed": int,
    "stop": str,
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "min_p": float,
}
OLLAMA_PARAMETERS = tuple(OLLAMA_PARAMETER_TYPES)
#: Ends a Modelfile's multi-line string: Ollama's parser has no escape for it.
MODELFILE_TRIPLE_QUOTE = '"""'
#: Control characters Ollama's Modelfile parser drops (tab, newline and carriage return are kept).
_MODELFILE_DROPPED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def modelfile_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be written as a Modelfile string, or ``None``.

    Ollama's parser (parser/parser.go) has no escapes: a string in triple quotes ends at the first line that
    ends with them, and whatever follows is read as Modelfile instructions (``FROM``, ``ADAPTER`` …).
    """
    if MODELFILE_TRIPLE_QUOTE in text:
        return (
            'contains """, which ends a Modelfile string: what follows would be read as Modelfile instructions '
            "(FROM, ADAPTER …); write it without three double quotes in a row"
        )
    if _MODELFILE_DROPPED.search(text):
        return "contains a control character, which Ollama's Modelfile parser drops"
    return None


def _number(value: float | int | str, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float and isinstance(value, int | float):
        return True
    if kind is int and isinstance(value, int):
        return True
    if isinstance(value, str):
        try:
            kind(value.strip())
        except ValueError:
            return False
        return True
    return False


class OllamaModelfile(ConfigModel):
    """A custom model built at start-up with `ollama create` from a Modelfile (templates/ollama/Modelfile.j2)."""

    system: str | None = Field(
        None,
        description='System prompt (Modelfile `SYSTEM`); refused if it contains `"""`, which Ollama cannot escape.',
    )
    parameters: dict[str, float | int | str] = Field(
        default_factory=dict,
        description="Modelfile `PARAMETER`s, e.g. temperature, num_ctx, top_p, stop (numbers where Ollama wants "
        'numbers; a stop string may not contain `"""`).',
    )

    @field_validator("system")
    @classmethod
    def _system(cls, value: str | None) -> str | None:
        problem = None if value is None else modelfile_text_problem(value)
        if problem is not None:
            raise ValueError(f"the system prompt {problem}")
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _known_parameters(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        for key, item in value.items():
            kind = OLLAMA_PARAMETER_TYPES.get(key)
            if kind is None:
                raise ValueError(
                    f"unknown Modelfile parameter '{key}' (expected one of {', '.join(OLLAMA_PARAMETERS)})"
                )
            if kind is str:
                if not isinstance(item, str):
                    raise ValueError(f"parameter {key}: expected a string")
                problem = modelfile_text_problem(item)
                if problem is not None:
                    raise ValueError(f"parameter {key} {problem}")
            elif not _number(item, kind):
                raise ValueError(f"parameter {key}: expected {'an integer' if kind is int else 'a number'}")
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
