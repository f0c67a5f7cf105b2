"""How many output tokens a model's replica generates: what `slm-deploy cost` turns into USD per million tokens.

Nothing here changes what is deployed. The figure is the stack's own (``tokensPerSecond``, measured or taken
from a benchmark of the same engine, model and GPU) or a results file of ``slm-deploy bench --format json`` run
against the model (``benchResults``); see docs/cost.md.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.config.base import ConfigModel


class Throughput(ConfigModel):
    """Output tokens per second of one replica at full load, and the load the model is expected to carry."""

    tokens_per_second: float | None = Field(
        None,
        gt=0,
        description="Output tokens per second one replica generates at full load (every sequence slot busy); "
        "unset: taken from `benchResults`.",
    )
    bench_results: str | None = Field(
        None,
        min_length=1,
        description="Path (relative to the project root) of a `slm-deploy bench --format json` results file run "
        "against this model: its highest error-free tokens/s, divided by `benchReplicas`, is the per-replica "
        "figure.",
    )
    bench_replicas: int = Field(1, ge=1, description="Replicas that served the bench run.")
    expected_tokens_per_second: float | None = Field(
        None,
        ge=0,
        description="Output tokens per second the model is expected to serve on average, all replicas together: "
        "the cost per million tokens at that load counts the replicas it needs (at least the minimum).",
    )

    @model_validator(mode="after")
    def _one_figure(self) -> Throughput:
        if self.tokens_per_second is not None and self.bench_results is not None:
            raise ValueError("set tokensPerSecond or benchResults, not both: which figure would count?")
        if self.tokens_per_second is None and self.bench_results is None:
            raise ValueError("set tokensPerSecond (output tokens/s per replica) or benchResults (a bench file)")
        return self
