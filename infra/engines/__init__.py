"""Serving engines: each module turns a model's config into an :class:`EngineSpec`."""

from __future__ import annotations

from collections.abc import Callable

from infra.config.model import ModelConfig
from infra.config.stack import StackConfig
from infra.engines.base import EngineContext, EngineSpec
from infra.engines.llamacpp import llamacpp_engine
from infra.engines.ollama import ollama_engine
from infra.engines.onnx import onnx_engine
from infra.engines.vllm import vllm_engine

_ADAPTERS: dict[str, Callable[[ModelConfig, EngineContext], EngineSpec]] = {
    "vllm": vllm_engine,
    "ollama": ollama_engine,
    "onnx": onnx_engine,
    "llamacpp": llamacpp_engine,
}


class EngineNotAvailableError(Exception):
    """The stack names an engine this version cannot deploy yet."""


def engine_for(model: ModelConfig, stack: StackConfig) -> EngineSpec:
    """The engine adapter's answer for ``model``."""
    adapter = _ADAPTERS.get(model.engine)
    if adapter is None:
        raise EngineNotAvailableError(
            f"engine '{model.engine}' cannot be deployed by this version (available: {', '.join(_ADAPTERS)})"
        )
    return adapter(model, context_of(model, stack))


def context_of(model: ModelConfig, stack: StackConfig) -> EngineContext:
    """The few stack settings an engine reads."""
    return EngineContext(
        gpu_vm_size=stack.gpu_vm_size(model),
        gpu_slice=stack.gpu_slice(model),
        downloads_allowed=stack.network.model_download == "allow",
    )
