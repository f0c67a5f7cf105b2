"""The ONNX Runtime GenAI server of this project (servers/onnx): OpenAI API, vLLM's metric names.

CPU by default (the edge-friendly path), CUDA optionally. The model lives in the cache volume under
``/models/onnx/<model>``, put there by the preparation Job (:mod:`infra.components.model_preparation`)
or by the operator.
"""

from __future__ import annotations

from infra.config.stack import ModelConfig, OnnxSettings, StackConfig
from infra.engines.base import EngineSpec, WritablePath

PORT = 8000
CACHE = "/models"


def model_path(model: ModelConfig) -> str:
    """Where the converted model is (the server reads it, the preparation Job writes it)."""
    return f"{CACHE}/onnx/{model.name}"


def onnx_engine(model: ModelConfig, stack: StackConfig) -> EngineSpec:
    settings = model.onnx or OnnxSettings()
    assert model.image is not None  # the config model requires one for this engine
    env = {
        "SLM_ONNX_MODEL_PATH": model_path(model),
        "SLM_ONNX_SERVED_MODEL_NAME": model.api_model_name,
        "SLM_ONNX_HOST": "0.0.0.0",
        "SLM_ONNX_PORT": str(PORT),
        "SLM_ONNX_MAX_CONCURRENCY": str(settings.max_concurrency),
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
    )
