"""Per-engine settings of a model (`vllm:`, `ollama:`, `onnx:`); the engine modules turn them into flags."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import ConfigModel
from infra.config.images import ImageRef
from infra.config.k8s_names import HF_REPO_ID, refuse
from infra.config.names import ContainerText
from policies.lib.engine_flags import LLAMACPP_ENGINE_FLAGS


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
    """A Job that fetches a model (a Hugging Face repository or a GGUF file) and converts it to the ONNX Runtime
    GenAI format, once."""

    source: str | None = Field(
        None,
        min_length=1,
        description="Hugging Face repository to convert; a repository already in ORT GenAI format (e.g. one "
        "prepared for Foundry Local) is used as it is. Give `source` or `gguf`.",
    )
    gguf: GgufSource | None = Field(
        None,
        description="A GGUF file to convert instead (fetched like the llamacpp engine's `gguf`, into "
        "`/models/gguf/<file>`); a quantised file is dequantised first. Give `source` or `gguf`.",
    )
    precision: Literal["auto", "int4", "int8", "fp16", "fp32"] = Field(
        "auto",
        description="Precision of the converted model. `auto`: INT4 with INT8 for the LM head and the most "
        "sensitive layers (the builder's `k_quant_mixed`, as llama.cpp's Q4_K_M mixes; on SmolLM2's Q4_1 GGUF it "
        "answered as INT8 did and plain INT4 did not), on CPU; `int8` when memory allows and quality matters more.",
    )
    image: ImageRef = Field(
        description="The preparation image (templates/docker/onnx-server.Dockerfile.j2 rendered with "
        "build_tools: true)."
    )

    @field_validator("source")
    @classmethod
    def _repository_id(cls, value: str | None) -> str | None:
        return None if value is None else refuse(HF_REPO_ID, value)

    @model_validator(mode="after")
    def _one_source(self) -> OnnxPrepare:
        if (self.source is None) == (self.gguf is None):
            raise ValueError("give source (a Hugging Face repository) or gguf (a GGUF file), not both nor neither")
        return self


class OnnxSettings(ConfigModel):
    """ONNX Runtime GenAI server settings (servers/onnx)."""

    device: Literal["cpu", "cuda"] = Field("cpu", description="Execution provider; cpu is CPU-only.")
    max_batch_size: int | None = Field(
        None,
        ge=1,
        le=256,
        description="og.Engine's static batch: generations at once (`SLM_ONNX_MAX_BATCH_SIZE`, default 4); KV "
        "memory is reserved for batch size x context length.",
    )
    max_concurrency: int | None = Field(
        None, ge=1, le=256, description="Deprecated name of maxBatchSize (used when maxBatchSize is unset)."
    )
    max_queue: int = Field(16, ge=0, description="Requests waiting beyond that; more get 429 (`SLM_ONNX_MAX_QUEUE`).")

    @property
    def batch_size(self) -> int:
        """The og.Engine batch size the server gets."""
        return self.max_batch_size or self.max_concurrency or 4

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


#: GGUF file names llama.cpp serves: one file (split models: the first part, ``…-00001-of-0000N.gguf``).
_GGUF_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}\.gguf")
_SHA256 = re.compile(r"[a-f0-9]{64}")


class GgufSource(ConfigModel):
    """Where the GGUF file comes from: a Hugging Face repository, an HTTPS URL, or nowhere (pre-filled cache)."""

    file: str = Field(
        description="The GGUF file name, e.g. `Qwen3-0.6B-Q8_0.gguf`; its quantisation type (`Q8_0`, `Q4_K_M` …) is "
        "read from the name for sizing. The server reads `/models/gguf/<file>`."
    )
    repo: str | None = Field(
        None, description="Hugging Face repository holding `file`; downloaded by the preparation step."
    )
    revision: str = Field(
        "main", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$", description="Branch, tag or commit of `repo`."
    )
    url: str | None = Field(
        None, pattern=r"^https://[^\s'\"\\$]+$", description="An HTTPS URL of the file (instead of `repo`)."
    )
    sha256: str | None = Field(
        None, description="SHA-256 of the file (64 lower-case hex digits); required with `url`, checked after download."
    )

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        if not _GGUF_FILE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a GGUF file name (letters, digits, '_', '.', '+', '-', ending in .gguf)"
            )
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        return None if value is None else refuse(HF_REPO_ID, value)

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError("expected 64 lower-case hex digits")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> GgufSource:
        if self.repo is not None and self.url is not None:
            raise ValueError("give repo or url, not both")
        if self.url is not None and self.sha256 is None:
            raise ValueError("a url needs its sha256: the download is checked against it")
        return self

    @property
    def downloads(self) -> bool:
        """Whether the preparation step downloads the file (otherwise the cache must hold it)."""
        return self.repo is not None or self.url is not None


class LlamaCppSettings(ConfigModel):
    """llama.cpp server (`llama-server`) flags."""

    gguf: GgufSource = Field(description="The GGUF file the server loads, and where it comes from.")
    ctx_size: int = Field(
        4096,
        ge=128,
        description="`--ctx-size`: context of all slots together (each slot gets ctxSize / parallel tokens).",
    )
    parallel: int = Field(4, ge=1, le=256, description="`--parallel`: slots, i.e. requests decoded at once.")
    threads: int | None = Field(None, ge=1, description="`--threads`; from the CPU limit (at least 1) when unset.")
    n_gpu_layers: int | None = Field(
        None, ge=0, description="`--n-gpu-layers` with GPUs; all layers (999) when unset. Ignored without GPUs."
    )
    extra_args: list[ContainerText] = Field(
        default_factory=list,
        description="More llama-server flags, passed as given; a flag the engine sets (`--model`, `--host`, "
        "`--port`, `--alias`, `--ctx-size` …) or an API key (`--api-key`) is refused.",
    )

    @field_validator("extra_args")
    @classmethod
    def _not_engine_flags(cls, value: list[str]) -> list[str]:
        for argument in value:
            flag = argument.split("=", 1)[0]
            if flag in LLAMACPP_ENGINE_FLAGS:
                raise ValueError(
                    f"{flag} is set by the engine (from the model's settings): set its key instead of extraArgs"
                )
            if flag in ("--api-key", "--api-key-file"):
                raise ValueError(
                    f"{flag}: authentication is the entry point's (entryPoint.apiKeys); the gateway checks the key "
                    "and strips it, so the server would refuse its requests"
                )
        return value
