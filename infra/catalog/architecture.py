"""What sizing needs to know of a model: its parameter count and attention geometry.

A stack names a catalogue model (``catalog: qwen3-8b``) or, for a model the catalogue does not hold, gives
these numbers itself under ``architecture`` (camelCase keys, as everywhere in a stack file).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import ConfigModel

Tier = Literal["micro", "small", "medium"]

#: Tier boundaries in billions of parameters, as users speak of them: micro 0.1-1.4B, small 1.5-13.9B,
#: medium 14-30B. Intervals are half-open ([0.1, 1.5), [1.5, 14), [14, 30]) so that every count between the
#: quoted figures (1.45B, 13.95B) still has exactly one tier.
TIER_BOUNDS: tuple[tuple[Tier, float, float], ...] = (
    ("micro", 0.1, 1.5),
    ("small", 1.5, 14.0),
    ("medium", 14.0, 30.0),
)


def tier_for(params_billion: float) -> Tier | None:
    """The tier of a model with ``params_billion`` parameters; None outside 0.1-30B."""
    for tier, low, high in TIER_BOUNDS:
        if low <= params_billion < high or (tier == "medium" and params_billion == high):
            return tier
    return None


class ModelArchitecture(ConfigModel):
    """The numbers sizing needs, from the model's ``config.json`` (for a model not in the catalogue)."""

    params: float = Field(gt=0, le=2000, description="Parameter count, in billions (3.8 for a 3.8B model).")
    layers: int = Field(ge=1, description="`num_hidden_layers`.")
    kv_heads: int = Field(ge=1, description="`num_key_value_heads` (equal to the attention heads without GQA).")
    head_dim: int = Field(ge=1, description="`head_dim`, or `hidden_size / num_attention_heads` when absent.")
    context_length: int = Field(ge=128, description="Native context length (`max_position_embeddings`).")
    attention_heads: int | None = Field(
        None, ge=1, description="`num_attention_heads`; tensor parallelism must divide it (checked when given)."
    )
    sliding_window: int | None = Field(
        None, ge=1, description="`sliding_window` of the local-attention layers, for models that have them."
    )
    sliding_window_pattern: int | None = Field(
        None,
        ge=2,
        description="Every N-th layer attends globally, the others locally (Gemma 3: 6, i.e. 5 local : 1 global).",
    )

    @model_validator(mode="after")
    def _heads(self) -> ModelArchitecture:
        if self.attention_heads is not None and self.attention_heads % self.kv_heads:
            raise ValueError(f"attentionHeads {self.attention_heads} is not a multiple of kvHeads {self.kv_heads}")
        if self.sliding_window_pattern is not None and self.sliding_window is None:
            raise ValueError("slidingWindowPattern needs slidingWindow")
        return self

    @property
    def tier(self) -> Tier | None:
        return tier_for(self.params)

    @property
    def global_layers(self) -> int:
        """Layers that attend over the whole context (all of them without a sliding-window pattern)."""
        if self.sliding_window is None:
            return self.layers
        if self.sliding_window_pattern is None:
            return 0
        return self.layers // self.sliding_window_pattern
