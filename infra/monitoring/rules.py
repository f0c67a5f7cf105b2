"""PrometheusRule specs for the model servers, rendered from ``templates/monitoring/rules/<Alert>.yaml.j2``.

Each template renders one alerting rule. ``render_rules`` renders every template for every model and
keeps a rule only when all series its expression names are exported for the model's engine (and GPU
rules only for models with GPUs), so an engine never gets an alert that cannot fire. A template that
names a series missing from the catalogue is an error, not a silently dropped rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from infra.config.monitoring import AlertThresholds, MonitoringOptions
from infra.monitoring.canary_rules import canary_rule_group
from infra.monitoring.cost_rules import cost_rule_group
from infra.monitoring.logs import ERROR_COUNTER
from infra.monitoring.metrics import LOG_SERIES, all_series, series_for
from infra.monitoring.model import MonitoredModel, quote
from infra.monitoring.picker_rules import picker_rule_group
from infra.monitoring.promql import metric_names
from infra.templating import render_template
from infra.yamlio import load_yaml

#: Every alert, in the order rules appear in a group; each has templates/monitoring/rules/<alert>.yaml.j2
#: and a section in docs/runbooks.md.
ALERTS: tuple[str, ...] = (
    "SlmTimeToFirstTokenHigh",
    "SlmEndToEndLatencyHigh",
    "SlmRequestErrorRatioHigh",
    "SlmQueueDepthHigh",
    "SlmKvCacheSaturated",
    "SlmPreemptionsHigh",
    "SlmGpuMemoryNearFull",
    "SlmPodRestarting",
    "SlmMetricsTargetDown",
    "SlmDeploymentUnavailable",
    "SlmErrorLogRateHigh",
)
RULE_TEMPLATE_DIR = "monitoring/rules"
#: ``finished_reason`` values counted as failed requests.
ERROR_REASONS = ("abort", "error")


def rule_template(alert: str) -> str:
    """The template of ``alert``, relative to templates/."""
    return f"{RULE_TEMPLATE_DIR}/{alert}.yaml.j2"


def runbook_anchor(alert: str) -> str:
    """The anchor of the alert's section in docs/runbooks.md (its heading is the alert name)."""
    return alert.lower()


def group_name(model: MonitoredModel) -> str:
    return f"slm-deploy.{model.namespace}.{model.name}"


def _fmt(value: float) -> str:
    return format(value, "g")


def _pct(value: float) -> str:
    return f"{value * 100:g}%"


def _label(name: str) -> str:
    return "{{ $labels.%s }}" % name  # noqa: UP031 - braces would need doubling in an f-string


def _value(pipeline: str | None = None) -> str:
    return "{{ $value | %s }}" % pipeline if pipeline else "{{ $value }}"  # noqa: UP031


def _selectors(model: MonitoredModel, options: MonitoringOptions) -> dict[str, str]:
    ns = quote(model.namespace)
    pods = quote(model.pod_regex)
    engine = f"namespace={ns},model_name={quote(model.served_model_name)}"
    errors = quote("|".join(ERROR_REASONS))
    return {
        "engine": "{%s}" % engine,  # noqa: UP031
        "engine_errors": "{%s,finished_reason=~%s}" % (engine, errors),  # noqa: UP031
        "pod": "{namespace=%s,pod=~%s}" % (ns, pods),  # noqa: UP031 - also llama.cpp's series (no model_name)
        "deployment": "{namespace=%s,%s}" % (ns, model.deployment_matcher),  # noqa: UP031
        "logs": "{namespace=%s,model=%s}" % (ns, quote(model.name)),  # noqa: UP031 - the collector's labels
        "gpu": "{%s=%s,%s=~%s}" % (options.dcgm_namespace_label, ns, options.dcgm_pod_label, pods),  # noqa: UP031
    }


def render_rule(
    alert: str, model: MonitoredModel, thresholds: AlertThresholds, options: MonitoringOptions
) -> dict[str, Any]:
    """One alerting rule for one model, with its common labels and runbook link, whether it applies or not."""
    text = render_template(
        rule_template(alert),
        model=model,
        t=thresholds,
        sel=_selectors(model, options),
        gpu={"namespace": options.dcgm_namespace_label, "pod": options.dcgm_pod_label},
        fmt=_fmt,
        pct=_pct,
        label=_label,
        value=_value,
        error_counter=ERROR_COUNTER,
    )
    rule = load_yaml(text)
    if not isinstance(rule, dict) or rule.get("alert") != alert:
        raise ValueError(f"{rule_template(alert)} must render one rule named {alert}")
    missing = {"expr", "for", "labels", "annotations"} - rule.keys()
    if missing or "severity" not in rule["labels"]:
        raise ValueError(f"{rule_template(alert)} lacks {', '.join(sorted(missing)) or 'labels.severity'}")
    unknown = rule_metrics(rule) - all_series()
    if unknown:
        raise ValueError(f"{rule_template(alert)} uses series not in the catalogue: {', '.join(sorted(unknown))}")
    return {
        "alert": alert,
        "expr": rule["expr"],
        "for": rule["for"],
        "labels": {**rule["labels"], "model": model.name, "engine": model.engine},
        "annotations": {
            **rule["annotations"],
            "runbook_url": f"{options.runbook_base_url}#{runbook_anchor(alert)}",
        },
    }


def rule_metrics(rule: dict[str, Any]) -> frozenset[str]:
    """The series names a rule's expression selects."""
    return metric_names(str(rule["expr"]))


def applies(rule: dict[str, Any], model: MonitoredModel, logs: bool = True) -> bool:
    """Whether every series the rule needs exists for the model (log-derived ones only when logs are collected)."""
    needed = rule_metrics(rule)
    if not logs and needed & LOG_SERIES:
        return False
    return needed <= series_for(model.engine, gpu=model.gpu_count > 0)


def _check(models: Sequence[MonitoredModel], thresholds: AlertThresholds) -> None:
    seen: set[tuple[str, str]] = set()
    for model in models:
        key = (model.namespace, model.name)
        if key in seen:
            raise ValueError(f"model '{model.name}' in namespace '{model.namespace}' is listed twice")
        seen.add(key)
        reserved = model.gpu_memory_reserved
        if reserved is not None and model.gpu_count > 0 and thresholds.gpu_memory_ratio <= reserved:
            raise ValueError(
                f"gpuMemoryRatio {thresholds.gpu_memory_ratio:g} is not above the {reserved:g} of GPU memory "
                f"model '{model.name}' reserves up front: SlmGpuMemoryNearFull would fire all the time"
            )


def render_rules(
    models: Sequence[MonitoredModel],
    thresholds: AlertThresholds | None = None,
    options: MonitoringOptions | None = None,
    logs: bool = True,
) -> dict[str, Any]:
    """The ``spec`` of a PrometheusRule: one group per model with the alerts its engine can fire.

    ``logs``: whether the stack collects container logs (the error-log alert needs the collector's counter).
    """
    thresholds = thresholds or AlertThresholds()
    options = options or MonitoringOptions()
    _check(models, thresholds)
    groups = []
    for model in models:
        rules = [render_rule(alert, model, thresholds, options) for alert in ALERTS]
        groups.append({"name": group_name(model), "rules": [rule for rule in rules if applies(rule, model, logs)]})
    # The cost recording rules after every alert group: one group per priced model whose engine counts tokens.
    groups += [group for model in models if (group := cost_rule_group(model)) is not None]
    # The endpoint pickers of models routed through an InferencePool (docs/inference-pool.md).
    groups += [g for model in models if (g := picker_rule_group(model, options.runbook_base_url)) is not None]
    # The stable-versus-canary comparison of models in a canary rollout (docs/canary.md).
    groups += [g for model in models if (g := canary_rule_group(model, options.runbook_base_url)) is not None]
    return {"groups": groups}


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


#: Multi-line strings (expressions) as ``|`` blocks, so rule files read like hand-written ones.
_BlockDumper: Any = type("_BlockDumper", (yaml.SafeDumper,), {})
_BlockDumper.add_representer(str, _str)


def rules_yaml(spec: dict[str, Any]) -> str:
    """The spec as a plain Prometheus rule file (``groups:``), as ``promtool check rules`` reads it."""
    return str(
        yaml.dump({"groups": spec["groups"]}, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=1000)
    )
