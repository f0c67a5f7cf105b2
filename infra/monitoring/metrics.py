"""The metric names each engine (and the platform around it) really exports, as data.

Alert rules and dashboards may only query names listed here, and only for the engines that export
them: ``render_rules`` leaves out a rule whose expression names a series the model's engine does not
have, and the tests check every dashboard query against the same lists.

Sources:

- vLLM's ``/metrics`` (``vllm:*``; label ``model_name`` is the served model name). The old
  ``vllm:gpu_cache_usage_perc`` was removed in vLLM 0.12 and is deliberately absent.
- The ONNX Runtime GenAI server exports a subset of the vLLM names, listed in ``ONNX_EXPORTED``.
- Ollama exports no Prometheus metrics in its released versions (ollama#3144): nothing native.
- llama.cpp's ``llama-server --metrics`` (``llamacpp:*``, read from tools/server/server-task.cpp of the pinned
  build): plain counters and gauges per server, no labels of its own (the scrape adds ``namespace`` and ``pod``),
  no histograms; ``LLAMACPP_METRICS`` lists them and docs/monitoring.md maps them to vLLM's.
- kube-state-metrics and the kubelet's cAdvisor (both scraped by kube-prometheus-stack), for every engine.
- Prometheus's own ``up`` series, for engines with a scrape target.
- NVIDIA's DCGM exporter, for models with GPUs.
- The log collector (Grafana Alloy, infra/monitoring/logs.py), which counts error lines of every model's
  container logs, whatever the engine, when the stack collects logs.
- Envoy AI Gateway's filter (the ext_proc beside each gateway proxy, port 1064), with ``entryPoint.quotas``: the
  OpenTelemetry GenAI histogram ``gen_ai.client.token.usage`` as Prometheus names it, whatever the engine behind
  it; ``slm_client`` is the client id header mapped to the attribute ``slm.client`` by the AI Gateway controller's
  ``metricsRequestHeaderAttributes`` (docs/quotas.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infra.monitoring.logs import ERROR_COUNTER, LOG_LABELS

EngineName = Literal["vllm", "ollama", "onnx", "llamacpp"]
ENGINES: tuple[EngineName, ...] = ("vllm", "ollama", "onnx", "llamacpp")
MetricKind = Literal["counter", "gauge", "histogram"]
Source = Literal[
    "engine", "prometheus", "kube-state-metrics", "cadvisor", "dcgm", "alloy", "recording-rule", "ai-gateway"
]


@dataclass(frozen=True)
class Metric:
    """One metric family as Prometheus stores it."""

    name: str
    kind: MetricKind
    source: Source
    help: str
    labels: tuple[str, ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """The series names a query may use: a histogram is its ``_bucket``, ``_sum`` and ``_count``."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


_VLLM_LABELS = ("model_name",)

#: Everything vLLM exports that alerts and dashboards use (v0.12 and later).
VLLM_METRICS: tuple[Metric, ...] = (
    Metric("vllm:num_requests_running", "gauge", "engine", "Requests being decoded now.", _VLLM_LABELS),
    Metric("vllm:num_requests_waiting", "gauge", "engine", "Requests waiting to be scheduled.", _VLLM_LABELS),
    Metric(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "engine",
        "KV-cache usage as a fraction (1 = full), despite the name.",
        _VLLM_LABELS,
    ),
    Metric(
        "vllm:time_to_first_token_seconds",
        "histogram",
        "engine",
        "Time from request arrival to the first generated token.",
        _VLLM_LABELS,
    ),
    Metric(
        "vllm:inter_token_latency_seconds",
        "histogram",
        "engine",
        "Time between two generated tokens of one request.",
        _VLLM_LABELS,
    ),
    Metric(
        "vllm:e2e_request_latency_seconds",
        "histogram",
        "engine",
        "Time from request arrival to its last token.",
        _VLLM_LABELS,
    ),
    Metric("vllm:prompt_tokens_total", "counter", "engine", "Prompt tokens processed.", _VLLM_LABELS),
    Metric("vllm:generation_tokens_total", "counter", "engine", "Tokens generated.", _VLLM_LABELS),
    Metric(
        "vllm:request_success_total",
        "counter",
        "engine",
        "Finished requests by finished_reason (stop, length, abort, error).",
        (*_VLLM_LABELS, "finished_reason"),
    ),
    Metric(
        "vllm:num_preemptions_total",
        "counter",
        "engine",
        "Requests preempted (KV cache evicted, recomputed later).",
        _VLLM_LABELS,
    ),
)

#: The vLLM metric names the ONNX Runtime GenAI server exports (same names, same labels). Change this
#: one list when the server exports more (or less); rules and dashboards follow.
ONNX_EXPORTED: tuple[str, ...] = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:time_to_first_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
)

#: Labels Prometheus puts on every series it scrapes from a pod (the ServiceMonitor's target labels).
_POD_LABELS = ("namespace", "pod")

#: What ``llama-server --metrics`` exports (tools/server/server-task.cpp, ``to_metrics``): one value per server,
#: no ``model_name`` label. Speculative-decoding counters (``llamacpp:spec_decode_*``) are left out: nothing
#: uses them.
LLAMACPP_METRICS: tuple[Metric, ...] = (
    Metric("llamacpp:requests_processing", "gauge", "engine", "Requests being processed (busy slots).", _POD_LABELS),
    Metric(
        "llamacpp:requests_deferred",
        "gauge",
        "engine",
        "Requests deferred because every slot is busy: the queue.",
        _POD_LABELS,
    ),
    Metric(
        "llamacpp:prompt_tokens_total",
        "counter",
        "engine",
        "Prompt tokens processed, excluding tokens reused from the cache.",
        _POD_LABELS,
    ),
    Metric(
        "llamacpp:prompt_tokens_cached_total", "counter", "engine", "Prompt tokens reused from the cache.", _POD_LABELS
    ),
    Metric("llamacpp:prompt_seconds_total", "counter", "engine", "Time spent processing prompts.", _POD_LABELS),
    Metric("llamacpp:tokens_predicted_total", "counter", "engine", "Tokens generated.", _POD_LABELS),
    Metric(
        "llamacpp:tokens_predicted_seconds_total", "counter", "engine", "Time spent generating tokens.", _POD_LABELS
    ),
    Metric("llamacpp:n_decode_total", "counter", "engine", "llama_decode() calls.", _POD_LABELS),
    Metric(
        "llamacpp:n_busy_slots_per_decode",
        "gauge",
        "engine",
        "Average busy slots per llama_decode() call (how well requests are batched).",
        _POD_LABELS,
    ),
    Metric("llamacpp:n_tokens_max", "gauge", "engine", "Largest sequence seen (prompt + generation).", _POD_LABELS),
)

#: Prometheus's own series for every scrape target.
SCRAPE_METRICS: tuple[Metric, ...] = (
    Metric("up", "gauge", "prometheus", "1 when the last scrape of the target succeeded, 0 otherwise.", ("job",)),
)

#: kube-state-metrics and cAdvisor: the same for every engine, with or without a metrics endpoint.
PLATFORM_METRICS: tuple[Metric, ...] = (
    Metric(
        "kube_deployment_status_replicas_available",
        "gauge",
        "kube-state-metrics",
        "Available (ready for minReadySeconds) replicas of a Deployment.",
        ("namespace", "deployment"),
    ),
    Metric(
        "kube_deployment_spec_replicas",
        "gauge",
        "kube-state-metrics",
        "Desired replicas of a Deployment.",
        ("namespace", "deployment"),
    ),
    Metric(
        "kube_pod_container_status_restarts_total",
        "counter",
        "kube-state-metrics",
        "Container restarts.",
        ("namespace", "pod", "container"),
    ),
    Metric(
        "kube_pod_container_resource_requests",
        "gauge",
        "kube-state-metrics",
        "What a container requests, by resource (cpu in cores, memory in bytes); init containers are not in it.",
        ("namespace", "pod", "container", "resource", "unit"),
    ),
    Metric(
        "container_cpu_usage_seconds_total",
        "counter",
        "cadvisor",
        "CPU time used by a container.",
        ("namespace", "pod", "container"),
    ),
    Metric(
        "container_memory_working_set_bytes",
        "gauge",
        "cadvisor",
        "Memory a container uses that cannot be reclaimed (what the OOM killer looks at).",
        ("namespace", "pod", "container"),
    ),
)

#: NVIDIA DCGM exporter, per GPU; with Kubernetes mapping on it labels each GPU with the pod using it.
DCGM_METRICS: tuple[Metric, ...] = (
    Metric("DCGM_FI_DEV_GPU_UTIL", "gauge", "dcgm", "GPU utilisation (%).", ("gpu", "namespace", "pod")),
    Metric("DCGM_FI_DEV_FB_USED", "gauge", "dcgm", "Framebuffer memory used (MiB).", ("gpu", "namespace", "pod")),
    Metric("DCGM_FI_DEV_FB_FREE", "gauge", "dcgm", "Framebuffer memory free (MiB).", ("gpu", "namespace", "pod")),
    Metric("DCGM_FI_DEV_POWER_USAGE", "gauge", "dcgm", "Power draw (W).", ("gpu", "namespace", "pod")),
    Metric("DCGM_FI_DEV_GPU_TEMP", "gauge", "dcgm", "GPU temperature (°C).", ("gpu", "namespace", "pod")),
)


#: Counted from the container logs by the collector (``loki.process`` ``stage.metrics``), for every engine.
LOG_METRICS: tuple[Metric, ...] = (
    Metric(
        ERROR_COUNTER,
        "counter",
        "alloy",
        "Error lines in a container's logs (infra/monitoring/logs.py ERROR_PATTERN).",
        LOG_LABELS,
    ),
)
#: Series that exist only when the stack collects logs (`monitoring.logs`).
LOG_SERIES: frozenset[str] = frozenset(name for metric in LOG_METRICS for name in metric.series)


#: The counter of generated (output) tokens each engine exports (``None``: none, so no cost per token).
OUTPUT_TOKEN_COUNTERS: dict[EngineName, str | None] = {
    "vllm": "vllm:generation_tokens_total",
    "onnx": "vllm:generation_tokens_total",
    "llamacpp": "llamacpp:tokens_predicted_total",
    "ollama": None,
}
#: Envoy AI Gateway's token usage per request, from each response's ``usage`` (docs/quotas.md).
TOKEN_USAGE = "gen_ai_client_token_usage"
#: The label of the API-key client (the ``x-slm-client`` header mapped to the metric attribute ``slm.client``).
CLIENT_LABEL = "slm_client"
GATEWAY_METRICS: tuple[Metric, ...] = (
    Metric(
        TOKEN_USAGE,
        "histogram",
        "ai-gateway",
        "Tokens per request (OpenTelemetry GenAI gen_ai.client.token.usage), by token type (input, output).",
        ("gen_ai_token_type", "gen_ai_request_model", CLIENT_LABEL),
    ),
)
#: Recorded by the stack's own cost rules (infra/monitoring/cost_rules.py), for a model whose nodes the price table
#: prices and whose engine counts its output tokens.
COST_METRICS: tuple[Metric, ...] = (
    Metric(
        "slm:model_node_cost_usd_per_hour",
        "gauge",
        "recording-rule",
        "USD an hour for the nodes of the model's available replicas (price table figure x replicas).",
        ("namespace", "model"),
    ),
    Metric(
        "slm:model_output_tokens_per_hour",
        "gauge",
        "recording-rule",
        "Output tokens the model generated over the last hour, from the engine's own counter.",
        ("namespace", "model"),
    ),
    Metric(
        "slm:model_cost_usd_per_million_output_tokens",
        "gauge",
        "recording-rule",
        "Node cost per hour over output tokens per hour, times a million.",
        ("namespace", "model"),
    ),
)


def _onnx_metrics() -> tuple[Metric, ...]:
    by_name = {metric.name: metric for metric in VLLM_METRICS}
    unknown = [name for name in ONNX_EXPORTED if name not in by_name]
    if unknown:
        raise ValueError(f"ONNX_EXPORTED names metrics vLLM does not have: {', '.join(unknown)}")
    return tuple(by_name[name] for name in ONNX_EXPORTED)


#: Metrics served by each engine's own endpoint.
ENGINE_METRICS: dict[EngineName, tuple[Metric, ...]] = {
    "vllm": VLLM_METRICS,
    "onnx": _onnx_metrics(),
    # ollama#3144: no Prometheus endpoint in released versions. Add an exporter's names here if one is deployed.
    "ollama": (),
    "llamacpp": LLAMACPP_METRICS,
}


def has_scrape_target(engine: EngineName) -> bool:
    """Whether Prometheus scrapes the engine itself (and so has an ``up`` series for it)."""
    return bool(ENGINE_METRICS[engine])


def metrics_for(engine: EngineName, *, gpu: bool = True) -> tuple[Metric, ...]:
    """Every metric family a model of ``engine`` has in Prometheus (DCGM only when it uses GPUs)."""
    metrics = list(ENGINE_METRICS[engine])
    if has_scrape_target(engine):
        metrics.extend(SCRAPE_METRICS)
    metrics.extend(PLATFORM_METRICS)
    metrics.extend(LOG_METRICS)
    metrics.extend(GATEWAY_METRICS)
    if OUTPUT_TOKEN_COUNTERS[engine] is not None:
        metrics.extend(COST_METRICS)
    if gpu:
        metrics.extend(DCGM_METRICS)
    return tuple(metrics)


def series_for(engine: EngineName, *, gpu: bool = True) -> frozenset[str]:
    """Every series name a query about a model of ``engine`` may use."""
    return frozenset(name for metric in metrics_for(engine, gpu=gpu) for name in metric.series)


def all_series() -> frozenset[str]:
    """Every series name in the catalogue, whatever the engine."""
    return frozenset().union(*(series_for(engine) for engine in ENGINES))
