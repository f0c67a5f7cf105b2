"""vLLM's OpenAI-compatible server (``vllm/vllm-openai``)."""

from __future__ import annotations

from infra.config.engines import VllmSettings
from infra.config.images import ImageRef
from infra.config.lora import LORA_MOUNT_ROOT, LoraSettings
from infra.config.model import ModelConfig
from infra.config.weights import WEIGHTS_MOUNT_PATH
from infra.engines.base import EngineContext, EngineSpec, ImageVolume, WritablePath
from infra.sizing.served import size_for
from infra.sizing.vm_sizes import GpuVmSize

#: The pinned release. v0.12 removed ``vllm:gpu_cache_usage_perc``; dashboards and alerts use
#: ``vllm:kv_cache_usage_perc``, which this release exports.
VLLM_IMAGE = ImageRef(repository="vllm/vllm-openai", tag="v0.14.0")
PORT = 8000
HOME = "/home/vllm"
CACHE = "/models"


def effective_settings(model: ModelConfig, gpu_vm_size: str | GpuVmSize | None) -> VllmSettings:
    """The vLLM flags: from sizing (on the model's VM size, or one slice of its shared GPU) when the model has it,
    each overridden by what the stack sets explicitly."""
    explicit = model.vllm or VllmSettings()
    if model.sizing is None:
        return explicit
    sized = size_for(model, gpu_vm_size).vllm_settings
    sized = {k: v for k, v in sized.items() if k in VllmSettings.model_fields}
    return VllmSettings.model_validate({**sized, **explicit.model_dump(exclude_unset=True)})


def vllm_engine(model: ModelConfig, context: EngineContext) -> EngineSpec:
    settings = effective_settings(model, context.gpu_slice or context.gpu_vm_size)
    weights = _weights_volume(model)
    args = [
        # vLLM loads a local folder as it loads a repository (config, tokenizer, safetensors).
        weights.mount_path if weights is not None else model.model_id,
        "--host=0.0.0.0",
        f"--port={PORT}",
        f"--served-model-name={model.api_model_name}",
        f"--gpu-memory-utilization={settings.gpu_memory_utilization:g}",
        f"--tensor-parallel-size={settings.tensor_parallel_size or model.gpu.count}",
        f"--dtype={settings.dtype}",
    ]
    if settings.max_model_len:
        args.append(f"--max-model-len={settings.max_model_len}")
    if settings.max_num_seqs:
        args.append(f"--max-num-seqs={settings.max_num_seqs}")
    if settings.quantization:
        args.append(f"--quantization={settings.quantization}")
    adapters = _adapter_volumes(model)
    if model.lora is not None:
        args += _lora_args(model.lora, adapters)
    args.extend(settings.extra_args)
    env = {
        # A UID with no passwd entry: getpass.getuser() falls back to these.
        "USER": "vllm",
        "LOGNAME": "vllm",
        # Every cache vLLM, PyTorch, Triton and Numba write goes to a writable volume.
        "HOME": HOME,
        "XDG_CACHE_HOME": f"{HOME}/.cache",
        "XDG_CONFIG_HOME": f"{HOME}/.config",
        "VLLM_CACHE_ROOT": f"{HOME}/.cache/vllm",
        "TRITON_CACHE_DIR": f"{HOME}/.triton",
        "TORCHINDUCTOR_CACHE_DIR": "/tmp/torchinductor",
        "NUMBA_CACHE_DIR": "/tmp/numba",
        "HF_HOME": f"{CACHE}/hf",
        # No usage reports leave the cluster (egress is denied anyway).
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if not context.downloads_allowed or weights is not None:
        # Weights must already be in the cache (or the image); fail fast instead of timing out on blocked egress.
        env["HF_HUB_OFFLINE"] = "1"
    return EngineSpec(
        app_name="vllm",
        container_name="vllm",
        image=model.image or VLLM_IMAGE,
        command=["vllm", "serve"],
        args=args,
        env=env,
        port=PORT,
        health_path="/health",
        metrics_path="/metrics",
        metrics_port=PORT,
        cache_mount_path=CACHE,
        image_volumes=(*([weights] if weights is not None else []), *adapters.values()),
        writable_paths=[
            WritablePath("tmp", "/tmp", size_limit="4Gi"),
            WritablePath("home", HOME, size_limit="8Gi"),
            # Tensor parallelism exchanges tensors through shared memory.
            WritablePath("dshm", "/dev/shm", medium="Memory", size_limit=_shm_size(model)),
        ],
        # huggingface_hub reads HF_TOKEN, or the file named by HF_TOKEN_PATH.
        hf_token_env="HF_TOKEN",
        hf_token_path_env="HF_TOKEN_PATH",
        # vLLM takes keys only as `--api-key` words on its command line (readable in the pod's process list) or
        # one key in VLLM_API_KEY, none from a file: so the model gets one key of its own, from a Secret into
        # VLLM_API_KEY, which the entry point sends in place of the client's key. vLLM checks it on /v1 paths only
        # (vllm/entrypoints/openai/api_server.py): probes and /metrics stay open.
        server_key_env="VLLM_API_KEY",
    )


def _weights_volume(model: ModelConfig) -> ImageVolume | None:
    """The weights image, mounted at /weights, when the model reads its weights from an image volume."""
    image = model.weights.image
    if not model.weights.image_volume or image is None:
        return None
    return ImageVolume("weights", image.reference, model.weights.pull_policy, WEIGHTS_MOUNT_PATH)


def _adapter_volumes(model: ModelConfig) -> dict[int, ImageVolume]:
    """The adapters that come in images, by their index in ``lora.adapters``: each mounted at /lora/<index>."""
    adapters = model.lora.adapters if model.lora is not None else []
    return {
        index: ImageVolume(
            f"lora-{index}", adapter.image.reference, model.weights.pull_policy, f"{LORA_MOUNT_ROOT}/{index}"
        )
        for index, adapter in enumerate(adapters)
        if adapter.image is not None
    }


def _lora_args(lora: LoraSettings, volumes: dict[int, ImageVolume]) -> list[str]:
    """Multi-LoRA flags (vLLM's ``EngineArgs`` and ``FrontendArgs``). ``--lora-modules`` takes one ``name=path`` word
    per adapter after the flag (``LoRAParserAction``; a repeated flag would replace the list, not extend it); a path
    that is no folder is a Hugging Face repository, downloaded into HF_HOME (the cache volume)."""
    modules = [
        f"{adapter.name}={volumes[index].mount_path if index in volumes else adapter.repo}"
        for index, adapter in enumerate(lora.adapters)
    ]
    return [
        "--enable-lora",
        f"--max-lora-rank={lora.effective_max_rank}",
        f"--max-loras={lora.effective_max_loras}",
        "--lora-modules",
        *modules,
    ]


def _shm_size(model: ModelConfig) -> str:
    return f"{max(1, 2 * model.gpu.count)}Gi"
