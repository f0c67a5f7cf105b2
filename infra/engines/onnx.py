"""The ONNX Runtime GenAI server of this project (servers/onnx): OpenAI API, vLLM's metric names.

CPU by default (the edge-friendly path), CUDA optionally. The model lives in the cache volume under
``/models/onnx/<model>``, put there by the preparation Job this module describes (``onnx.prepare``:
download the Hugging Face repository, or fetch a GGUF file into ``/models/gguf/`` (``onnx.prepare.gguf``; none
when the file is pre-filled there), then convert it with the onnxruntime-genai model builder through
``python -m slm_onnx_server.prepare``, which skips a model already converted, dequantises a quantised GGUF
file first and uses a repository already in ORT GenAI format as it is), or by the operator. Both steps are
idempotent: re-running costs a check.
"""

from __future__ import annotations

from infra.config.engines import GgufSource, OnnxPrepare, OnnxSettings
from infra.config.model import ModelConfig
from infra.engines.base import ApiKeyFile, EngineContext, EngineSpec, Preparation, PrepareStep, WritablePath

PORT = 8000
CACHE = "/models"
#: Where a GGUF source is fetched to (or pre-filled): the llamacpp engine's place for GGUF files too.
GGUF_DIR = f"{CACHE}/gguf"

_DOWNLOAD = """set -eu
if [ -f "$SLM_OUTPUT/genai_config.json" ]; then echo "already prepared: $SLM_OUTPUT"; exit 0; fi
python -c 'import os, huggingface_hub as hub; hub.snapshot_download(os.environ["SLM_SOURCE"],
    local_dir=os.environ["SLM_DOWNLOAD"])'
"""


def model_path(model: ModelConfig) -> str:
    """Where the converted model is (the server reads it, the preparation Job writes it)."""
    return f"{CACHE}/onnx/{model.name}"


def preparation(model: ModelConfig, prepare: OnnxPrepare, device: str) -> Preparation:
    """Fetch the source (repository or GGUF file) into the cache, then convert it next to where the server reads."""
    output = model_path(model)
    env = {"SLM_OUTPUT": output, "HF_HOME": f"{CACHE}/hf", "HOME": "/tmp"}
    steps: list[PrepareStep] = []
    if prepare.gguf is not None:
        source = f"{GGUF_DIR}/{prepare.gguf.file}"
        fetch = fetch_gguf_step(prepare.gguf, output)
        if fetch is not None:
            steps.append(fetch)
    else:
        source = f"{CACHE}/hf-source/{model.name}"
        env |= {"SLM_SOURCE": str(prepare.source), "SLM_DOWNLOAD": source}
        steps.append(PrepareStep("download", ["/bin/sh", "-c", _DOWNLOAD]))
    convert = PrepareStep(
        "convert",
        ["python", "-m", "slm_onnx_server.prepare"],
        [
            f"--source={source}",
            f"--output={output}",
            f"--precision={prepare.precision}",
            f"--execution-provider={device}",
        ],
    )
    return Preparation(image=prepare.image, env=env, cache_mount_path=CACHE, steps=(*steps, convert))


def fetch_gguf_step(gguf: GgufSource, output: str) -> PrepareStep | None:
    """``python -m slm_onnx_server.fetch_gguf`` when the file comes from a repository or a URL; none when the
    cache is pre-filled with it."""
    if gguf.repo is not None:
        where = [f"--repo={gguf.repo}", f"--revision={gguf.revision}"]
    elif gguf.url is not None:
        where = [f"--url={gguf.url}", f"--sha256={gguf.sha256}"]
    else:
        return None
    args = [f"--file={gguf.file}", f"--dir={GGUF_DIR}", f"--skip-if={output}", *where]
    return PrepareStep("fetch-gguf", ["python", "-m", "slm_onnx_server.fetch_gguf"], args)


def onnx_engine(model: ModelConfig, context: EngineContext) -> EngineSpec:
    settings = model.onnx or OnnxSettings()
    assert model.image is not None  # the config model requires one for this engine
    env = {
        "SLM_ONNX_MODEL_PATH": model_path(model),
        "SLM_ONNX_SERVED_MODEL_NAME": model.api_model_name,
        "SLM_ONNX_HOST": "0.0.0.0",
        "SLM_ONNX_PORT": str(PORT),
        "SLM_ONNX_MAX_BATCH_SIZE": str(settings.batch_size),
        "SLM_ONNX_MAX_QUEUE": str(settings.max_queue),
        "SLM_ONNX_EXECUTION_PROVIDER": settings.device,
        "HOME": "/tmp",
    }
    if settings.context_length:
        env["SLM_ONNX_CONTEXT_LENGTH"] = str(settings.context_length)
    return EngineSpec(
        app_name="onnx",
        container_name="onnx-server",
        image=model.image,
        # The image's entrypoint starts the server; arguments come from the environment.
        command=[],
        args=[],
        env=env,
        port=PORT,
        health_path="/health",
        metrics_path="/metrics",
        metrics_port=PORT,
        cache_mount_path=CACHE,
        writable_paths=[WritablePath("tmp", "/tmp", size_limit="1Gi")],
        preparation=preparation(model, settings.prepare, settings.device) if settings.prepare else None,
        # servers/onnx auth.py: the JSON object of client name to key; /health and /metrics stay open.
        api_key_file=ApiKeyFile(file_format="json", path_env="SLM_ONNX_API_KEYS_FILE"),
    )
