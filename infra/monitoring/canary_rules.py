"""The stable-versus-canary comparison of a model in a canary rollout (``models[].versions``, docs/canary.md).

Both revisions serve the same ``model_name``; the scrape labels each revision's series with ``model_version`` (the
revision's name, from its Service). Two alerts compare the canary with the stable revision over the same window:

- ``SlmCanaryTimeToFirstTokenWorse``: the canary's p95 time to first token is more than ``TTFT_RATIO`` times the
  stable revision's (20 % slower);
- ``SlmCanaryErrorRatioWorse``: the canary's share of requests finished with ``abort`` or ``error`` is more than
  ``ERROR_MARGIN`` (one percentage point) above the stable revision's.

Both wait ``FOR`` before firing, so a cold canary's first minutes do not page; no traffic on either revision gives no
value (silent). They are warnings: the answer is to roll back by weights, which a person decides.
"""

from __future__ import annotations

from typing import Any

from infra.config.versions import METRIC_VERSION_LABEL
from infra.monitoring.metrics import series_for
from infra.monitoring.model import MonitoredModel, quote
from infra.monitoring.promql import metric_names
from policies.lib.canary import COMPARISON_ALERTS, ERROR_ALERT, TTFT_ALERT

ALERTS = COMPARISON_ALERTS
WINDOW = "15m"
FOR = "10m"
#: The canary's p95 time to first token may be at most this many times the stable revision's.
TTFT_RATIO = 1.2
#: The canary's error ratio may exceed the stable revision's by at most this much (a fraction of requests).
ERROR_MARGIN = 0.01
#: ``finished_reason`` values counted as failed requests (as SlmRequestErrorRatioHigh counts them).
ERROR_REASONS = "abort|error"


def canary_group_name(model: MonitoredModel) -> str:
    return f"slm-deploy.{model.namespace}.{model.name}.canary"


def _selector(model: MonitoredModel, version: str, errors: bool = False) -> str:
    matchers = [
        f"namespace={quote(model.namespace)}",
        f"model_name={quote(model.served_model_name)}",
        f"{METRIC_VERSION_LABEL}={quote(version)}",
    ]
    if errors:
        matchers.append(f"finished_reason=~{quote(ERROR_REASONS)}")
    return "{%s}" % ",".join(matchers)  # noqa: UP031


def _ttft_p95(model: MonitoredModel, version: str) -> str:
    return (
        "histogram_quantile(0.95, sum by (namespace, model_name, le) "
        f"(rate(vllm:time_to_first_token_seconds_bucket{_selector(model, version)}[{WINDOW}])))"
    )


def _error_ratio(model: MonitoredModel, version: str) -> str:
    finished = f"sum by (namespace, model_name) (rate(vllm:request_success_total{_selector(model, version)}[{WINDOW}]))"
    failed = (
        "sum by (namespace, model_name) "
        f"(rate(vllm:request_success_total{_selector(model, version, errors=True)}[{WINDOW}]))"
    )
    # No error series yet counts as no error (``or`` the finished rate times 0), not as no value.
    return f"(({failed}) or ({finished} * 0)) / {finished}"


def canary_rule_group(model: MonitoredModel, runbook_base_url: str) -> dict[str, Any] | None:
    """The comparison alerts of a model in a canary rollout, or ``None`` (no rollout, or an engine without the
    series they compare)."""
    if len(model.versions) != 2:
        return None
    stable, canary = model.versions
    labels = {"severity": "warning", "model": model.name, "engine": model.engine}
    versions = f"canary {canary} against stable {stable} of {model.served_model_name} in {model.namespace}"
    rules = [
        {
            "alert": TTFT_ALERT,
            "expr": f"{_ttft_p95(model, canary)}\n> {TTFT_RATIO:g} * {_ttft_p95(model, stable)}",
            "for": FOR,
            "labels": dict(labels),
            "annotations": {
                "summary": f"The canary {canary} of {model.name} answers slower than the stable {stable}",
                "description": f"The p95 time to first token of the {versions} has been more than {TTFT_RATIO:g} "
                f"times the stable revision's over {WINDOW} for {FOR}: roll back by weights (docs/canary.md).",
                "runbook_url": f"{runbook_base_url}#{TTFT_ALERT.lower()}",
            },
        },
        {
            "alert": ERROR_ALERT,
            "expr": f"{_error_ratio(model, canary)}\n> {ERROR_MARGIN:g} + {_error_ratio(model, stable)}",
            "for": FOR,
            "labels": dict(labels),
            "annotations": {
                "summary": f"The canary {canary} of {model.name} fails more requests than the stable {stable}",
                "description": f"The share of requests of the {versions} that ended with finished_reason abort or "
                f"error has been more than {ERROR_MARGIN:.0%} above the stable revision's over {WINDOW} for {FOR}: "
                "roll back by weights (docs/canary.md).",
                "runbook_url": f"{runbook_base_url}#{ERROR_ALERT.lower()}",
            },
        },
    ]
    available = series_for(model.engine, gpu=model.gpu_count > 0)
    kept = [rule for rule in rules if metric_names(str(rule["expr"])) <= available]
    return {"name": canary_group_name(model), "rules": kept} if kept else None
