"""Recording rules: what a model's nodes cost per million output tokens, from the engine's own token counter.

Prometheus knows no prices: the USD an hour one replica's nodes cost (infra/cost/replica.py, from the dated price
table) is written into the rule as a constant and multiplied by the replicas kube-state-metrics counts as
available. Tokens are the engine's counter of generated tokens over the last hour (vLLM and the ONNX server
``vllm:generation_tokens_total``, llama.cpp ``llamacpp:tokens_predicted_total``; Ollama exports none, so it gets
no rule). A model whose nodes the table cannot price gets none either: no figure is better than a wrong one.
"""

from __future__ import annotations

from typing import Any

from infra.monitoring.metrics import COST_METRICS, OUTPUT_TOKEN_COUNTERS
from infra.monitoring.model import MonitoredModel, quote

NODE_COST, TOKENS_PER_HOUR, COST_PER_MILLION = (metric.name for metric in COST_METRICS)
#: The window tokens are counted over (the figure is per hour of traffic, so an idle hour has none).
WINDOW = "1h"


def cost_group_name(model: MonitoredModel) -> str:
    return f"slm-deploy.{model.namespace}.{model.name}.cost"


def cost_rule_group(model: MonitoredModel) -> dict[str, Any] | None:
    """The recording rules of one model, or ``None`` when it has no price or no token counter."""
    counter = OUTPUT_TOKEN_COUNTERS[model.engine]
    if counter is None or model.replica_cost_per_hour is None:
        return None
    ns = quote(model.namespace)
    if model.engine == "llamacpp":  # one value per server, labelled by pod only
        tokens = "{namespace=%s,pod=~%s}" % (ns, quote(model.pod_regex))  # noqa: UP031
    else:
        tokens = "{namespace=%s,model_name=%s}" % (ns, quote(model.served_model_name))  # noqa: UP031
    deployment = "{namespace=%s,%s}" % (ns, model.deployment_matcher)  # noqa: UP031
    mine = "{namespace=%s,model=%s}" % (ns, quote(model.name))  # noqa: UP031
    labels = {"model": model.name}
    return {
        "name": cost_group_name(model),
        "rules": [
            {
                "record": NODE_COST,
                "expr": f"{model.replica_cost_per_hour:.6g} * sum by (namespace) "
                f"(kube_deployment_status_replicas_available{deployment})",
                "labels": dict(labels),
            },
            {
                "record": TOKENS_PER_HOUR,
                "expr": f"3600 * sum by (namespace) (rate({counter}{tokens}[{WINDOW}]))",
                "labels": dict(labels),
            },
            {
                "record": COST_PER_MILLION,
                "expr": f"1e6 * {NODE_COST}{mine} / ({TOKENS_PER_HOUR}{mine} > 0)",
                "labels": dict(labels),
            },
        ],
    }
