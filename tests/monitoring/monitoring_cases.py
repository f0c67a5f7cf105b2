"""Shared by the monitoring tests: representative models, and per alert a bad and healthy input.

``SCENARIOS`` has one entry per alert. Each builds promtool ``input_series`` with the real metric
names for a given model: a ``bad`` series set that must fire the alert (and the labels and value it
fires with), and ``healthy`` sets that must keep it silent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.config.monitoring import duration_seconds
from infra.monitoring import AlertThresholds, MonitoredModel, MonitoringOptions
from infra.monitoring.logs import ERROR_COUNTER

#: Samples every minute for 75 minutes; alerts are evaluated at EVAL_MINUTES.
INTERVAL = "1m"
#: promtool evaluates the rules this often (each step costs time in every test group).
EVALUATION_INTERVAL = "2m"
SAMPLES = 75
EVAL_MINUTES = 60

#: One model per engine and GPU/CPU flavour, with the alerts each must get.
MODELS: dict[str, MonitoredModel] = {
    "vllm-gpu": MonitoredModel(
        "chat", "slm-chat", "vllm", "microsoft/Phi-4-mini-instruct", gpu_count=1, gpu_memory_reserved=0.9
    ),
    "onnx-cpu": MonitoredModel("tiny", "slm-tiny", "onnx", "tiny-llama"),
    "onnx-gpu": MonitoredModel("tiny-gpu", "ml-serving", "onnx", "tiny-llama-cuda", gpu_count=1),
    "ollama-cpu": MonitoredModel("llama", "slm-llama", "ollama", "llama3.2:1b"),
    "ollama-gpu": MonitoredModel("gemma", "slm-gemma", "ollama", "gemma3:4b", gpu_count=1),
}
_VLLM_SLO = ("SlmTimeToFirstTokenHigh", "SlmEndToEndLatencyHigh", "SlmRequestErrorRatioHigh", "SlmQueueDepthHigh")
_VLLM_ONLY = ("SlmKvCacheSaturated", "SlmPreemptionsHigh")
_SCRAPED = ("SlmPodRestarting", "SlmMetricsTargetDown", "SlmDeploymentUnavailable")
#: From the container logs, whatever the engine (when the stack collects logs, the default).
_LOGS = ("SlmErrorLogRateHigh",)
EXPECTED_ALERTS: dict[str, frozenset[str]] = {
    "vllm-gpu": frozenset((*_VLLM_SLO, *_VLLM_ONLY, "SlmGpuMemoryNearFull", *_SCRAPED, *_LOGS)),
    "onnx-cpu": frozenset((*_VLLM_SLO, *_SCRAPED, *_LOGS)),
    "onnx-gpu": frozenset((*_VLLM_SLO, "SlmGpuMemoryNearFull", *_SCRAPED, *_LOGS)),
    "ollama-cpu": frozenset(("SlmPodRestarting", "SlmDeploymentUnavailable", *_LOGS)),
    "ollama-gpu": frozenset(("SlmGpuMemoryNearFull", "SlmPodRestarting", "SlmDeploymentUnavailable", *_LOGS)),
}
#: A model outside every rendered rule file: its bad series must not fire our models' alerts.
FOREIGN = MonitoredModel("other", "slm-other", "vllm", "other-model", gpu_count=1)

#: Non-default thresholds, to show that rules and tests follow them.
TIGHT = AlertThresholds(
    ttft_p95_seconds=0.5,
    e2e_p95_seconds=8,
    error_ratio=0.2,
    queue_depth=3,
    kv_cache_ratio=0.75,
    preemption_rate=0.02,
    gpu_memory_ratio=0.95,
    restarts=1,
    restarts_window="45m",
    rate_window="2m",
    latency_for="1m",
    error_ratio_for="2m",
    queue_for="30s",
    kv_cache_for="3m",
    preemption_for="1m",
    gpu_memory_for="20m",
    restarts_for="0s",
    target_down_for="1m",
    unavailable_for="20m",
    error_log_rate=0.02,
    error_log_for="4m",
)
#: DCGM scraped without honorLabels, and runbooks served from a web view.
EXPORTED_LABELS = MonitoringOptions(
    runbook_base_url="https://runbooks.example.org/slm/runbooks.md",
    dcgm_namespace_label="exported_namespace",
    dcgm_pod_label="exported_pod",
)

Series = list[dict[str, str]]


@dataclass
class Scenario:
    bad: Series
    #: Labels of the firing alert that come from the expression (the rule adds its own).
    labels: dict[str, str]
    #: What ``$value`` is when the bad input fires.
    value: float
    healthy: list[Series] = field(default_factory=list)


def pod(model: MonitoredModel) -> str:
    return f"{model.name}-7d9f8c6b5d-x2x4z"


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def constant(value: float) -> str:
    return f"{value:g}+0x{SAMPLES}"


def per_minute(step: float) -> str:
    return f"0+{step:g}x{SAMPLES}"


def engine_labels(model: MonitoredModel) -> dict[str, str]:
    return {
        "job": model.name,
        "instance": "10.244.1.7:8000",
        "namespace": model.namespace,
        "pod": pod(model),
        "model_name": model.served_model_name,
    }


def _histogram(name: str, model: MonitoredModel, threshold: float, *, slow: bool) -> Series:
    """Observations all above twice the threshold (p95 = the last finite bound, 2 * threshold) or all fast."""
    bounds = [threshold / 2, threshold, threshold * 2]
    result = [
        series(f"{name}_bucket", {**engine_labels(model), "le": f"{bound:g}"}, per_minute(0 if slow else 10))
        for bound in bounds
    ]
    result.append(series(f"{name}_bucket", {**engine_labels(model), "le": "+Inf"}, per_minute(10)))
    result.append(series(f"{name}_count", engine_labels(model), per_minute(10)))
    return result


def _idle_histogram(name: str, model: MonitoredModel, threshold: float) -> Series:
    return [
        series(f"{name}_bucket", {**engine_labels(model), "le": le}, constant(0)) for le in (f"{threshold:g}", "+Inf")
    ]


def _model_labels(model: MonitoredModel) -> dict[str, str]:
    return {"namespace": model.namespace, "model_name": model.served_model_name}


def _latency(metric: str, attribute: str) -> Callable[[MonitoredModel, AlertThresholds, MonitoringOptions], Scenario]:
    def build(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
        threshold = float(getattr(t, attribute))
        return Scenario(
            bad=_histogram(metric, model, threshold, slow=True),
            labels=_model_labels(model),
            value=threshold * 2,
            healthy=[_histogram(metric, model, threshold, slow=False), _idle_histogram(metric, model, threshold)],
        )

    return build


def _errors(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    def finished(reason: str, step: float) -> dict[str, str]:
        labels = {**engine_labels(model), "finished_reason": reason}
        return series("vllm:request_success_total", labels, per_minute(step))

    return Scenario(
        bad=[finished("abort", 3), finished("error", 3), finished("stop", 0)],
        labels=_model_labels(model),
        value=1.0,
        healthy=[
            [finished("abort", 0), finished("stop", 6), finished("length", 2)],
            [finished("stop", 0)],  # no traffic at all
        ],
    )


def _gauge(metric: str, bad: float, healthy: tuple[float, ...]) -> Callable[[MonitoredModel], Scenario]:
    def build(model: MonitoredModel) -> Scenario:
        return Scenario(
            bad=[series(metric, engine_labels(model), constant(bad))],
            labels=_model_labels(model),
            value=bad,
            healthy=[[series(metric, engine_labels(model), constant(value))] for value in healthy],
        )

    return build


def _queue(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    return _gauge("vllm:num_requests_waiting", t.queue_depth * 2, (0, t.queue_depth))(model)


def _kv_cache(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    return _gauge("vllm:kv_cache_usage_perc", 1.0, (0.3, t.kv_cache_ratio))(model)


def _preemptions(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    metric = "vllm:num_preemptions_total"
    per_second = t.preemption_rate * 2
    return Scenario(
        bad=[series(metric, engine_labels(model), per_minute(per_second * 60))],
        labels=_model_labels(model),
        value=per_second,
        healthy=[[series(metric, engine_labels(model), constant(4))]],
    )


def _gpu_memory(model: MonitoredModel, t: AlertThresholds, options: MonitoringOptions) -> Scenario:
    labels = {
        "gpu": "0",
        "UUID": "GPU-5f1d3c2e-0000-0000-0000-000000000000",
        "modelName": "NVIDIA A10",
        options.dcgm_namespace_label: model.namespace,
        options.dcgm_pod_label: pod(model),
    }

    def gpu(used: float, free: float) -> Series:
        return [
            series("DCGM_FI_DEV_FB_USED", labels, constant(used)),
            series("DCGM_FI_DEV_FB_FREE", labels, constant(free)),
        ]

    assert t.gpu_memory_ratio < 0.999
    return Scenario(
        bad=gpu(22_977, 23),
        labels={options.dcgm_namespace_label: model.namespace, options.dcgm_pod_label: pod(model)},
        value=22_977 / 23_000,
        healthy=[gpu(11_500, 11_500)],
    )


def _restarts(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    labels = {"namespace": model.namespace, "pod": pod(model), "container": model.engine, "uid": "4f1c"}
    window_minutes = duration_seconds(t.restarts_window) / 60
    assert window_minutes >= t.restarts
    return Scenario(
        bad=[series("kube_pod_container_status_restarts_total", labels, per_minute(1))],
        labels={"namespace": model.namespace, "pod": pod(model), "container": model.engine},
        value=window_minutes,
        healthy=[[series("kube_pod_container_status_restarts_total", labels, constant(2))]],
    )


def _target_down(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    labels = {"job": model.name, "instance": "10.244.1.7:8000", "namespace": model.namespace, "pod": pod(model)}
    return Scenario(
        bad=[series("up", labels, constant(0))],
        labels={"namespace": model.namespace, "pod": pod(model)},
        value=0,
        healthy=[[series("up", labels, constant(1))]],
    )


def _unavailable(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    labels = {"namespace": model.namespace, "deployment": model.deployment, "job": "kube-state-metrics"}

    def deployment(available: float, desired: float) -> Series:
        return [
            series("kube_deployment_status_replicas_available", labels, constant(available)),
            series("kube_deployment_spec_replicas", labels, constant(desired)),
        ]

    return Scenario(
        bad=deployment(0, 2),
        labels={"namespace": model.namespace, "deployment": model.deployment},
        value=0,
        healthy=[deployment(2, 2), deployment(1, 2), deployment(0, 0)],  # serving, degraded, scaled to zero
    )


def _error_logs(model: MonitoredModel, t: AlertThresholds, _: MonitoringOptions) -> Scenario:
    # As the collector exports it, scraped with honorLabels: the logging pod's labels, not the collector's.
    labels = {
        "job": "alloy",
        "instance": "10.244.2.9:12345",
        "namespace": model.namespace,
        "pod": pod(model),
        "container": model.engine,
        "model": model.name,
    }
    per_second = t.error_log_rate * 2
    return Scenario(
        bad=[series(ERROR_COUNTER, labels, per_minute(per_second * 60))],
        labels={"namespace": model.namespace, "model": model.name},
        value=per_second,
        healthy=[
            [series(ERROR_COUNTER, labels, constant(12))],  # errors long ago, none now
            [series(ERROR_COUNTER, labels, per_minute(t.error_log_rate * 60 / 2))],  # below the threshold
        ],
    )


ScenarioBuilder = Callable[[MonitoredModel, AlertThresholds, MonitoringOptions], Scenario]
SCENARIOS: dict[str, ScenarioBuilder] = {
    "SlmTimeToFirstTokenHigh": _latency("vllm:time_to_first_token_seconds", "ttft_p95_seconds"),
    "SlmEndToEndLatencyHigh": _latency("vllm:e2e_request_latency_seconds", "e2e_p95_seconds"),
    "SlmRequestErrorRatioHigh": _errors,
    "SlmQueueDepthHigh": _queue,
    "SlmKvCacheSaturated": _kv_cache,
    "SlmPreemptionsHigh": _preemptions,
    "SlmGpuMemoryNearFull": _gpu_memory,
    "SlmPodRestarting": _restarts,
    "SlmMetricsTargetDown": _target_down,
    "SlmDeploymentUnavailable": _unavailable,
    "SlmErrorLogRateHigh": _error_logs,
}


# --- Go template functions, as Prometheus renders $value --------------------------------------------


def _g(value: float) -> str:
    return "%.4g" % value  # noqa: UP031 - Go's %.4g


def humanize(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _g(value)
    if abs(value) >= 1:
        prefix = ""
        for unit in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = unit, value / 1000
        return _g(value) + prefix
    prefix = ""
    for unit in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix, value = unit, value * 1000
    return _g(value) + prefix


def humanize_duration(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value) or abs(value) < 1:
        # As Prometheus's humanizeDuration: below a second, SI prefixes (0.25 -> "250ms").
        return humanize(value) + "s"
    whole = int(value)
    days, hours, minutes, seconds = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{minutes}m {seconds}s"
    return _g(value) + "s"


_PIPELINES: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": lambda value: _g(value * 100) + "%",
    'printf "%.0f"': lambda value: f"{value:.0f}",
    'printf "%.2f"': lambda value: f"{value:.2f}",
}
_LABEL_REF = re.compile(r"\{\{ \$labels\.([a-zA-Z_][a-zA-Z0-9_]*) \}\}")
_VALUE_REF = re.compile(r"\{\{ \$value \| ([^}]+?) \}\}")


def expand(template: str, labels: dict[str, str], value: float) -> str:
    """An annotation as Prometheus renders it, for the few template forms the rules use."""
    text = _LABEL_REF.sub(lambda m: labels[m.group(1)], template)
    text = _VALUE_REF.sub(lambda m: _PIPELINES[m.group(1)](value), text)
    if "{{" in text:
        raise ValueError(f"annotation uses a template form the tests cannot expand: {template}")
    return text


# --- promtool rule-test files ------------------------------------------------------------------------


def rule_tests(
    model: MonitoredModel, group: dict[str, Any], thresholds: AlertThresholds, options: MonitoringOptions
) -> list[dict[str, Any]]:
    """promtool test groups proving every rule of ``group``.

    The scenarios of different alerts use different series, so they share test groups (promtool
    starts a fresh database per group, which is what costs time): one group with every alert's bad
    input, where each alert must fire exactly as expected; one per healthy variant and one with
    another model's bad input, where no alert may fire at all.
    """
    eval_time = f"{EVAL_MINUTES}m"
    alerts = [rule["alert"] for rule in group["rules"]]
    scenarios = {rule["alert"]: SCENARIOS[rule["alert"]](model, thresholds, options) for rule in group["rules"]}
    fired = []
    for rule in group["rules"]:
        scenario = scenarios[rule["alert"]]
        labels = {**rule["labels"], **scenario.labels}
        annotations = {key: expand(text, labels, scenario.value) for key, text in rule["annotations"].items()}
        fired.append((rule["alert"], [{"exp_labels": labels, "exp_annotations": annotations}]))

    def group_test(name: str, input_series: Series, expected: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
        return {
            "name": f"{model.name} ({model.engine}): {name}",
            "interval": INTERVAL,
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": eval_time, "alertname": alert, "exp_alerts": exp_alerts} for alert, exp_alerts in expected
            ],
        }

    silent: list[tuple[str, list[dict[str, Any]]]] = [(alert, []) for alert in alerts]
    tests = [group_test("each alert fires on its bad input", [s for sc in scenarios.values() for s in sc.bad], fired)]
    variants = max((len(scenario.healthy) for scenario in scenarios.values()), default=0)
    for index in range(variants):
        healthy = [s for sc in scenarios.values() if index < len(sc.healthy) for s in sc.healthy[index]]
        tests.append(group_test(f"no alert on healthy input #{index + 1}", healthy, silent))
    foreign = [s for alert in alerts for s in SCENARIOS[alert](FOREIGN, thresholds, options).bad]
    tests.append(group_test("no alert on another model's bad input", foreign, silent))
    return tests
