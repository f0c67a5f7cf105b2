"""llama.cpp's OpenAI-compatible server (``llama-server``, image ``ghcr.io/ggml-org/llama.cpp:server-<build>``).

It serves one GGUF file from the cache volume (``/models/gguf/<file>``). When the stack lets models download
and ``llamacpp.gguf`` names a repository or a URL, an init container fetches the file first (curl, in the same
image; a file already there is kept; a URL's download is checked against its sha256). Flags come from
``llamacpp`` and the model's resources: ``--ctx-size``, ``--parallel`` (slots), ``--threads`` (the CPU limit),
``--n-gpu-layers`` with GPUs, ``--alias`` (the served name), ``--metrics``.

API keys: when the stack has keys and the model is routed through the entry point, the model server component
mounts them and appends ``--api-key-file <path>``; llama-server reads one key per line (common/arg.cpp of the
pinned build; lines starting with ``#`` are comments) and checks every path but ``/health`` (``/metrics`` too,
so Prometheus scrapes with a key of its own).
"""

from __future__ import annotations

import math

from infra.config.engines import GgufSource, LlamaCppSettings
from infra.config.images import ImageRef
from infra.config.model import ModelConfig
from infra.config.quantity import parse_quantity
from infra.engines.base import ApiKeyFile, EngineContext, EngineSpec, PrepareStep, WritablePath

#: The pinned build: llama.cpp b11312 (commit 0c1e57098), the llama.cpp that llama-cpp-python 0.3.36 vendors,
#: which scripts/llama-server.sh builds and tests/llamacpp runs with these very arguments.
LLAMACPP_BUILD = "b11312"
LLAMACPP_IMAGE = ImageRef(repository="ghcr.io/ggml-org/llama.cpp", tag=f"server-{LLAMACPP_BUILD}")
#: The same build compiled for CUDA.
LLAMACPP_CUDA_IMAGE = ImageRef(repository="ghcr.io/ggml-org/llama.cpp", tag=f"server-cuda-{LLAMACPP_BUILD}")
#: The image's entrypoint (.devops/cpu.Dockerfile and cuda.Dockerfile of that build, target ``server``: Ubuntu
#: with curl, which the fetch step uses, ``WORKDIR /app``, ``ENTRYPOINT ["/app/llama-server"]``).
SERVER = "/app/llama-server"
PORT = 8080
CACHE = "/models"
GGUF_DIR = f"{CACHE}/gguf"
#: ``--n-gpu-layers`` when the model has GPUs and ``llamacpp.nGpuLayers`` is unset: every layer.
ALL_LAYERS = 999
HF_RESOLVE = "https://huggingface.co/{repo}/resolve/{revision}/{file}"

# Fetch the GGUF file into the cache unless it is there; a token (gated repositories) goes to curl in a header
# file, never on its command line. A checksum, when given, is checked before the file takes its final name.
_FETCH_SCRIPT = """set -eu
target="$SLM_GGUF_DIR/$SLM_GGUF_FILE"
if [ -f "$target" ]; then echo "already in the cache: $target"; exit 0; fi
mkdir -p "$SLM_GGUF_DIR"
partial="$target.partial"
set -- --fail --location --retry 5 --silent --show-error --output "$partial"
token=""
if [ -n "${HF_TOKEN_PATH:-}" ] && [ -f "$HF_TOKEN_PATH" ]; then token="$(cat "$HF_TOKEN_PATH")"; fi
if [ -n "$token" ] && [ "${SLM_GGUF_HUB:-}" = 1 ]; then
  printf 'Authorization: Bearer %s\\n' "$token" > /tmp/hub-auth
  set -- "$@" --header @/tmp/hub-auth
fi
curl "$@" "$SLM_GGUF_URL"
rm -f /tmp/hub-auth
if [ -n "${SLM_GGUF_SHA256:-}" ]; then
  echo "$SLM_GGUF_SHA256  $partial" | sha256sum -c -
fi
mv "$partial" "$target"
"""


def model_path(source: GgufSource) -> str:
    """Where the server reads the GGUF file (the fetch step writes it there)."""
    return f"{GGUF_DIR}/{source.file}"


def download_url(source: GgufSource) -> str | None:
    if source.url is not None:
        return source.url
    if source.repo is not None:
        return HF_RESOLVE.format(repo=source.repo, revision=source.revision, file=source.file)
    return None


def threads(model: ModelConfig, settings: LlamaCppSettings) -> int:
    """``--threads``: as set, else the CPU limit rounded down (at least 1)."""
    if settings.threads is not None:
        return settings.threads
    return max(1, math.floor(parse_quantity(model.resources.limits.cpu)))


def server_args(model: ModelConfig, settings: LlamaCppSettings) -> list[str]:
    """llama-server's arguments (flag and value as separate words, as common/arg.cpp parses them)."""
    args = [
        "--model",
        model_path(settings.gguf),
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--alias",
        model.api_model_name,
        "--ctx-size",
        str(settings.ctx_size),
        "--parallel",
        str(settings.parallel),
        "--threads",
        str(threads(model, settings)),
        "--metrics",
        "--no-webui",
    ]
    if model.gpu.count > 0:
        layers = settings.n_gpu_layers if settings.n_gpu_layers is not None else ALL_LAYERS
        args += ["--n-gpu-layers", str(layers)]
    return [*args, *settings.extra_args]


def fetch_step(source: GgufSource) -> PrepareStep | None:
    url = download_url(source)
    if url is None:
        return None
    env = {"SLM_GGUF_DIR": GGUF_DIR, "SLM_GGUF_FILE": source.file, "SLM_GGUF_URL": url}
    if source.repo is not None:
        env["SLM_GGUF_HUB"] = "1"
    if source.sha256 is not None:
        env["SLM_GGUF_SHA256"] = source.sha256
    return PrepareStep(name="fetch-gguf", command=["/bin/sh", "-c", _FETCH_SCRIPT], env=env)


def llamacpp_engine(model: ModelConfig, context: EngineContext) -> EngineSpec:
    settings = model.llamacpp
    assert settings is not None  # the config model requires it for this engine
    step = fetch_step(settings.gguf) if context.downloads_allowed else None
    default_image = LLAMACPP_CUDA_IMAGE if model.gpu.count > 0 else LLAMACPP_IMAGE
    return EngineSpec(
        app_name="llamacpp",
        container_name="llama-server",
        image=model.image or default_image,
        command=[SERVER],
        args=server_args(model, settings),
        # HOME on a writable volume: nothing of llama-server's may land on the read-only root.
        env={"HOME": "/tmp"},
        port=PORT,
        # 503 while the model loads, 200 once it serves: the start-up probe waits for it.
        health_path="/health",
        metrics_path="/metrics",
        metrics_port=PORT,
        cache_mount_path=CACHE,
        writable_paths=[WritablePath("tmp", "/tmp", size_limit="1Gi")],
        # The fetch step reads a gated repository's token from the mounted file (llama-server reads none).
        hf_token_path_env="HF_TOKEN_PATH" if step is not None and settings.gguf.repo is not None else None,
        prepare=(step,) if step is not None else (),
        # llama-server defers requests when every slot is busy; its series carry no model label.
        queue_metric="llamacpp:requests_deferred",
        metrics_model_label=None,
        # server-http.cpp: only /health (and the web UI, off here) is public once keys are set.
        api_key_file=ApiKeyFile(file_format="lines", path_flag="--api-key-file", metrics_need_key=True),
    )
