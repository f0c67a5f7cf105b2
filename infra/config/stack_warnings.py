"""Warnings about a valid stack: things that deploy, but that someone should know about before they do.

A warning never fails a command. :meth:`infra.config.stack.StackConfig.warnings` collects them; ``validate``,
``plan``, ``render`` and ``check`` print each on stderr as one line, like an error but starting with
``warning:`` (see :meth:`ConfigWarning.line`), and keep their exit status.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.config.base import KeyPath, format_key_path
from infra.config.model import ModelConfig
from infra.config.network import NetworkConfig

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

#: Where the ways to pre-fill a model cache are written down (repository path, shown in messages).
MODEL_CACHE_DOC = "docs/model-cache.md"


@dataclass(frozen=True)
class ConfigWarning:
    """One warning at a key path of the stack config."""

    path: KeyPath
    message: str

    @property
    def key_path(self) -> str:
        return format_key_path(self.path)

    def line(self, source: str) -> str:
        """``warning: <stack file>: slm-deploy:<key path>: <message>``, on one line."""
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.message)
        return f"warning: {source}: {self.key_path}: {message}"


def model_cache_warnings(network: NetworkConfig, models: Sequence[ModelConfig]) -> list[ConfigWarning]:
    """With ``modelDownload: deny``, every model whose weights nothing will put into its cache volume.

    Egress from a model's namespace is denied, for its server and for its preparation Job alike (both carry
    the model's instance label), so neither can reach a model hub or registry: the cache must be pre-filled.
    """
    if network.model_download != "deny":
        return []
    found: list[ConfigWarning] = []
    at: KeyPath = ("network", "modelDownload")
    prefill = f"the cache must be pre-filled: see {MODEL_CACHE_DOC}"
    for model in models:
        if model.weights.image_volume:
            continue  # its weights come in an image volume: nothing to download
        subject = f"is deny, and model '{model.name}' ({model.engine})"
        if model.engine == "ollama":
            why = f"is not pulled: its init step fails unless '{model.model_id}' is already in the cache volume"
        elif model.engine == "vllm":
            repos = [a.repo for a in model.lora.adapters if a.repo] if model.lora is not None else []
            loaded = ", ".join(f"'{name}'" for name in [model.model_id, *repos])
            why = f"runs offline (HF_HUB_OFFLINE=1): {loaded} must already be in the cache volume"
        elif model.engine == "onnx" and model.onnx is not None and model.onnx.prepare is not None:
            gguf = model.onnx.prepare.gguf
            if gguf is None:
                why = (
                    f"has a preparation Job that downloads '{model.onnx.prepare.source}' from the Hugging Face Hub, "
                    "which the model's egress policy blocks"
                )
            elif gguf.downloads:
                why = f"has a preparation Job that downloads '{gguf.file}', which the model's egress policy blocks"
            else:
                why = f"converts the GGUF file '{gguf.file}', which must already be in the cache volume"
        elif model.engine == "onnx":
            why = "has no onnx.prepare: the converted model must already be in the cache volume"
        else:
            why = "cannot download its weights (the model's egress policy blocks it): they must be in the cache volume"
        found.append(ConfigWarning(at, f"{subject} {why}; {prefill}"))
    return found


def price_table_warnings(today: datetime.date) -> list[ConfigWarning]:
    """The price table ``slm-deploy cost`` and the budget rule use, once it is older than its ``maxAgeDays``."""
    from infra.cost.table import PRICES_FILE, price_table

    table = price_table()
    if not table.is_stale(today):
        return []
    return [
        ConfigWarning(
            (),
            f"the price table (infra/cost/{PRICES_FILE}) is {table.age_days(today)} days old, more than its "
            f"maxAgeDays {table.max_age_days}: cost estimates and budget checks use prices of "
            f"{table.retrieved.isoformat()}; refresh the figures (docs/cost.md)",
        )
    ]


def price_coverage_warnings(config: StackConfig) -> list[ConfigWarning]:
    """The stack's region, VM sizes and tier the price table cannot price (infra/cost/coverage.py)."""
    from infra.cost.coverage import price_coverage

    return [ConfigWarning(path, message) for path, message in price_coverage(config)]
