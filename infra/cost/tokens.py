"""USD per million output tokens: what a model's nodes cost an hour, over the tokens its replicas generate.

Two loads: full load (every replica the autoscaler may run, each generating its full-load tokens/s) and the
expected load (the stack's ``throughput.expectedTokensPerSecond``, served by as many replicas as it needs, never
fewer than the minimum). The cost counted is the nodes the model's replicas occupy (whole GPU nodes, or a CPU
pod's share of one): shared pools, the AKS tier, load balancers and storage are not in the figure, as they are
not in the Grafana recording rule (infra/monitoring/cost_rules.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.json_keys import camel

TOKENS = 1_000_000
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class ReplicaThroughput:
    """A model's per-replica full-load output tokens/s and where the figure comes from (``None``: unknown)."""

    model: str
    tokens_per_second: float | None
    source: str
    expected_tokens_per_second: float | None = None


@dataclass(frozen=True)
class TokenCost:
    model: str
    tokens_per_second: float | None
    source: str
    #: USD an hour for the nodes of one replica (a share of a node for CPU pods and GPU pods that share nodes).
    replica_hourly: float | None
    full_load: float | None
    max_replicas: int
    expected_tokens_per_second: float | None
    expected_replicas: int | None
    expected_load: float | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def usd(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "model": self.model,
            "tokensPerSecondPerReplica": self.tokens_per_second,
            "throughputSource": self.source,
            "replicaHourly": usd(self.replica_hourly),
            "fullLoad": {"usdPerMillionOutputTokens": usd(self.full_load), "replicas": self.max_replicas},
            "expectedLoad": {
                "usdPerMillionOutputTokens": usd(self.expected_load),
                "tokensPerSecond": self.expected_tokens_per_second,
                "replicas": self.expected_replicas,
            },
            "note": self.note,
        }


#: The bench file's per-level key (bench writes camelCase; files of earlier versions have the snake_case name).
TOKENS_KEYS = (camel("output_tokens_per_s"), "output_tokens_per_s")


def _level_tokens(level: Any) -> float | None:
    if not isinstance(level, dict) or level.get("errors"):
        return None
    found = next((level[key] for key in TOKENS_KEYS if level.get(key)), None)
    return None if found is None else float(found)


def bench_tokens_per_second(path: Path) -> float:
    """The highest error-free output tokens/s of a ``slm-deploy bench --format json`` file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    levels = data.get("levels") if isinstance(data, dict) else None
    if not isinstance(levels, list):
        raise ValueError("not a `slm-deploy bench --format json` file (no levels)")
    clean = [tokens for level in levels if (tokens := _level_tokens(level)) is not None]
    if not clean:
        raise ValueError("no concurrency level finished without errors")
    return max(clean)


def token_cost(
    throughput: ReplicaThroughput,
    hourly_for: Callable[[int], float | None],
    replicas: tuple[int, int],
) -> TokenCost:
    """``hourly_for(n)``: USD an hour for the nodes ``n`` replicas occupy (``None``: not priced)."""
    low, high = replicas
    tps, expected = throughput.tokens_per_second, throughput.expected_tokens_per_second
    one = hourly_for(1)
    notes: list[str] = []
    full = expected_usd = None
    needed = None
    if tps is None:
        notes.append(throughput.source)
    elif one is None:
        notes.append("the model's nodes are not priced")
    else:
        top = hourly_for(high)
        full = None if top is None else top / (high * tps * SECONDS_PER_HOUR) * TOKENS
        if expected is not None and expected > 0:
            needed = min(max(math.ceil(expected / tps), low, 1), high)
            served = min(expected, needed * tps)
            if expected > high * tps:
                notes.append(
                    f"expected {expected:g} tokens/s is more than {high} replicas generate ({high * tps:g}): "
                    "priced at what they can serve"
                )
            hourly = hourly_for(needed)
            expected_usd = None if hourly is None else hourly / (served * SECONDS_PER_HOUR) * TOKENS
        elif expected is None:
            notes.append("no throughput.expectedTokensPerSecond: only the full-load figure")
    return TokenCost(
        model=throughput.model,
        tokens_per_second=tps,
        source=throughput.source,
        replica_hourly=one,
        full_load=full,
        max_replicas=high,
        expected_tokens_per_second=expected,
        expected_replicas=needed,
        expected_load=expected_usd,
        note="; ".join(notes) or None,
    )
