"""Settings that contradict each other: refused with both keys named, never left for one to win silently.

- ``replicas`` together with ``autoscaling.enabled``: the autoscaler owns the replica count.
- vLLM ``extraArgs`` that repeat or contradict a flag the engine sets itself (``--host``, ``--port``, the model,
  ``--served-model-name``, ``--max-model-len`` when sizing or ``vllm.maxModelLen`` sets it …), or that would
  put an API key in the container's arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.config.base import KeyPath, KeyPathError, format_key_path
from infra.config.k8s_names import show
from infra.config.model import ModelConfig

#: The multi-LoRA flags the engine sets from ``lora`` (infra/engines/vllm.py).
LORA_FLAGS = ("--enable-lora", "--lora-modules", "--max-lora-rank", "--max-loras")
#: vLLM's short spellings of the flags the engine sets.
_VLLM_ALIASES = {"-tp": "--tensor-parallel-size", "-q": "--quantization"}


def vllm_flag_name(argument: str) -> str | None:
    """The long flag an argument sets, as vLLM reads it (``--max_model_len=8`` → ``--max-model-len``)."""
    if not argument.startswith("-") or argument in ("-", "--"):
        return None
    flag = argument.partition("=")[0]
    if flag.startswith("--"):
        # vLLM's parser accepts underscores for dashes in flag names.
        return "--" + flag[2:].replace("_", "-")
    return _VLLM_ALIASES.get(flag, flag)


def vllm_engine_flags(model: ModelConfig, index: int) -> dict[str, tuple[KeyPath, str]]:
    """The flags infra/engines/vllm.py sets for ``model``: flag → (the key that sets it, how).

    Mirrors ``vllm_engine``: tests/unit/test_config_names.py checks every flag it emits is listed here.
    """
    at: KeyPath = ("models", index)
    settings = model.vllm
    explicit = settings.model_fields_set if settings is not None else set()
    sizing = model.sizing

    def source(field: str, alias: str, sized: str | None) -> KeyPath:
        """The explicit vLLM setting, else the sizing key that derives it, else the vLLM setting's default."""
        if field in explicit or sizing is None:
            return (*at, "vllm", alias)
        return (*at, "sizing", sized) if sized else (*at, "sizing")

    flags: dict[str, tuple[KeyPath, str]] = {
        "--model": (
            (*at, "weights", "image") if model.weights.image_volume else (*at, "modelId"),
            "the model the engine serves",
        ),
        "--host": ((*at, "engine"), "the engine listens on 0.0.0.0"),
        "--port": ((*at, "engine"), "the Service, probes and network policies use the engine's port"),
        "--served-model-name": (
            (*at, "servedModelName") if model.served_model_name else (*at, "name"),
            "the name clients ask for",
        ),
        "--gpu-memory-utilization": (
            source("gpu_memory_utilization", "gpuMemoryUtilization", "gpuMemoryUtilization"),
            "the share of GPU memory",
        ),
        "--tensor-parallel-size": (
            source("tensor_parallel_size", "tensorParallelSize", None)
            if "tensor_parallel_size" in explicit or sizing is not None
            else (*at, "gpu", "count"),
            "the tensor-parallel size",
        ),
        "--dtype": (source("dtype", "dtype", None), "the weights' dtype"),
        # Adapters are typed (names checked against every served name, ranks against vLLM's): never raw flags.
        **{
            flag: ((*at, "lora"), "LoRA adapters are declared under lora (adapters, maxRank, maxLoras)")
            for flag in LORA_FLAGS
        },
        # vLLM reads the API key from its arguments: it would sit in the Deployment for anyone who can read it,
        # and the server would refuse the entry point's requests (the gateway checks the key and strips it).
        "--api-key": ((*at, "vllm", "extraArgs"), "authentication is the entry point's (entryPoint.apiKeys)"),
    }
    if (settings is not None and settings.max_model_len) or sizing is not None:
        flags["--max-model-len"] = (source("max_model_len", "maxModelLen", "context"), "the context length")
    if (settings is not None and settings.max_num_seqs) or sizing is not None:
        flags["--max-num-seqs"] = (source("max_num_seqs", "maxNumSeqs", "concurrency"), "the concurrent sequences")
    if settings is not None and settings.quantization:
        flags["--quantization"] = ((*at, "vllm", "quantization"), "the quantization method")
    return flags


def check_model_conflicts(models: Sequence[ModelConfig]) -> None:
    """Raise :class:`KeyPathError` for the first pair of contradicting settings, naming both keys."""
    for index, model in enumerate(models):
        if model.autoscaling.enabled and "replicas" in model.model_fields_set:
            raise KeyPathError(
                ("models", index, "replicas"),
                f"is set, but {format_key_path(('models', index, 'autoscaling', 'enabled'))} is true: the "
                "autoscaler owns the replica count (it starts at autoscaling.minReplicas and stays within "
                "minReplicas..maxReplicas); remove replicas",
            )
        if model.engine != "vllm" or model.vllm is None:
            continue
        engine_flags = vllm_engine_flags(model, index)
        for position, argument in enumerate(model.vllm.extra_args):
            flag = vllm_flag_name(argument)
            if flag is None or flag not in engine_flags:
                continue
            key, why = engine_flags[flag]
            here = ("models", index, "vllm", "extraArgs", position)
            if flag == "--api-key":
                raise KeyPathError(
                    here,
                    f"{flag} would put an API key in the container's arguments, readable by anyone who can read the "
                    f"Deployment; {why}",
                )
            raise KeyPathError(
                here,
                f"{show(argument)} sets {flag}, which the engine sets already from {format_key_path(key)} ({why}): "
                "set it there, not in extraArgs",
            )
