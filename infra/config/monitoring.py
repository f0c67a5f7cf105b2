"""Alert thresholds and monitoring options, as stack-config sections (camelCase keys in the stack file)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from infra.config.base import ConfigModel
from infra.config.names import DnsLabel, Quantity
from infra.config.resources import Resources

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration (``90s``, ``5m``, ``1h30m``)."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"'{text}' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if part)


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _label_name(value: str) -> str:
    if not _LABEL_NAME.fullmatch(value):
        raise ValueError(f"'{value}' is not a Prometheus label name")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
LabelName = Annotated[str, AfterValidator(_label_name)]


class AlertThresholds(ConfigModel):
    """Thresholds and `for:` durations of the model alerts (docs/runbooks.md explains each alert)."""

    ttft_p95_seconds: float = Field(
        2.0, gt=0, description="SlmTimeToFirstTokenHigh: p95 time to first token above this many seconds."
    )
    e2e_p95_seconds: float = Field(
        60.0, gt=0, description="SlmEndToEndLatencyHigh: p95 end-to-end request latency above this many seconds."
    )
    error_ratio: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="SlmRequestErrorRatioHigh: share of finished requests aborted or failed (0-1) above this.",
    )
    queue_depth: float = Field(10, gt=0, description="SlmQueueDepthHigh: waiting requests on one replica above this.")
    kv_cache_ratio: float = Field(
        0.9, gt=0, lt=1, description="SlmKvCacheSaturated: KV-cache usage of one replica (0-1) above this."
    )
    preemption_rate: float = Field(
        0.1, gt=0, description="SlmPreemptionsHigh: preemptions per second across the model's replicas above this."
    )
    gpu_memory_ratio: float = Field(
        0.97,
        gt=0,
        lt=1,
        description=(
            "SlmGpuMemoryNearFull: GPU framebuffer used / (used + free) above this. vLLM reserves "
            "`gpuMemoryUtilization` (0.9) of each GPU up front, so keep this above it."
        ),
    )
    restarts: int = Field(
        3, ge=1, description="SlmPodRestarting: container restarts within `restartsWindow` at or above this."
    )
    restarts_window: Duration = Field("30m", description="Window over which SlmPodRestarting counts restarts.")
    rate_window: Duration = Field(
        "5m", description="Window of the rates and latency percentiles (at least 4 scrape intervals)."
    )
    latency_for: Duration = Field("10m", description="`for:` of SlmTimeToFirstTokenHigh and SlmEndToEndLatencyHigh.")
    error_ratio_for: Duration = Field("5m", description="`for:` of SlmRequestErrorRatioHigh.")
    queue_for: Duration = Field("5m", description="`for:` of SlmQueueDepthHigh.")
    kv_cache_for: Duration = Field("10m", description="`for:` of SlmKvCacheSaturated.")
    preemption_for: Duration = Field("10m", description="`for:` of SlmPreemptionsHigh.")
    gpu_memory_for: Duration = Field("15m", description="`for:` of SlmGpuMemoryNearFull.")
    restarts_for: Duration = Field("5m", description="`for:` of SlmPodRestarting.")
    target_down_for: Duration = Field("5m", description="`for:` of SlmMetricsTargetDown.")
    unavailable_for: Duration = Field(
        "10m", description="`for:` of SlmDeploymentUnavailable; longer than a normal model start-up from zero."
    )
    error_log_rate: float = Field(
        0.1,
        gt=0,
        description="SlmErrorLogRateHigh: error lines per second in the model's container logs above this "
        "(logs collected: `monitoring.logs`).",
    )
    error_log_for: Duration = Field("10m", description="`for:` of SlmErrorLogRateHigh.")


class MonitoringOptions(ConfigModel):
    """Where runbooks live and how the cluster's exporters label their series."""

    runbook_base_url: str = Field(
        "docs/runbooks.md",
        min_length=1,
        description="URL of docs/runbooks.md as on-call opens it (e.g. the repository's web view); "
        "each alert's `runbook_url` is this plus `#<alert name in lower case>`.",
    )
    dcgm_namespace_label: LabelName = Field(
        "namespace",
        description="Label carrying the GPU's pod namespace on DCGM series: `namespace` when the DCGM "
        "ServiceMonitor honours the exporter's labels, `exported_namespace` when it does not.",
    )
    dcgm_pod_label: LabelName = Field(
        "pod", description="Label carrying the GPU's pod name on DCGM series (`pod` or `exported_pod`)."
    )


class AlertmanagerReceiver(ConfigModel):
    """Where alerts go. The endpoint URL is a secret (it embeds a token), referenced by name."""

    name: DnsLabel = Field(description="Receiver name.")
    type: Literal["slack", "msteams", "webhook"] = Field(description="Kind of receiver.")
    url_secret: str = Field(description="Key under `secrets` holding the webhook URL.")
    severity: Literal["critical", "warning", "all"] = Field("all", description="Which alerts it receives.")


class LogsConfig(ConfigModel):
    """Container logs of the model servers and the gateway, in Loki next to the metrics (docs/monitoring.md)."""

    enabled: bool = Field(
        True,
        description="Install Loki (single binary) and Grafana Alloy with kube-prometheus-stack; with `mode: "
        "existing` or `none` nothing is installed (send logs to your own store, e.g. Container Insights).",
    )
    retention_days: int = Field(
        7,
        ge=1,
        le=365,
        description="Days Loki keeps logs before its compactor deletes them. Logs may quote prompts: keep it short "
        "(7 by default, cheap; policy helm-log-retention caps it).",
    )
    storage_size: Quantity = Field("10Gi", description="Loki's volume (chunks and index on the filesystem).")
    storage_class: DnsLabel | None = Field(None, description="Storage class of Loki's volume; the cluster default.")
    resources: Resources = Field(
        default_factory=lambda: Resources.model_validate(
            {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
        ),
        description="CPU and memory of Loki.",
    )
    collector_resources: Resources = Field(
        default_factory=lambda: Resources.model_validate(
            {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
        ),
        description="CPU and memory of the collector (Grafana Alloy).",
    )


class MonitoringConfig(ConfigModel):
    """Prometheus, Grafana and Alertmanager for the model servers."""

    mode: Literal["kube-prometheus-stack", "existing", "none"] = Field(
        "kube-prometheus-stack",
        description="Install kube-prometheus-stack; or `existing`: only scrape, rule and dashboard objects for a "
        "Prometheus you run (e.g. Azure Managed Prometheus); or `none`.",
    )
    namespace: DnsLabel = Field("monitoring", description="Namespace of Prometheus (and of the chart).")
    prometheus_url: str = Field(
        "",
        description="Prometheus query URL for KEDA; the chart's service when empty and mode is kube-prometheus-stack.",
    )
    pod_security: Literal["restricted", "baseline"] = Field(
        "restricted",
        description="Pod Security level enforced on the monitoring namespace (audit and warn stay restricted); "
        "`baseline` is an opt-out that the policy pack reports.",
    )
    retention: str = Field("15d", pattern=r"^\d+[smhdwy]$", description="Prometheus retention.")
    storage_size: Quantity = Field("50Gi", description="Prometheus volume size.")
    prometheus_replicas: int | None = Field(
        None, ge=1, description="Prometheus replicas (each scrapes everything; 2 for high availability)."
    )
    prometheus_resources: Resources | None = Field(
        None, description="CPU and memory of Prometheus (requests and limits); the chart sets none when unset."
    )
    grafana: bool = Field(True, description="Install Grafana with the dashboard sidecar.")
    grafana_admin_secret: DnsLabel = Field(
        "grafana-admin",
        description="Existing Secret in the monitoring namespace with keys `admin-user` and `admin-password`: "
        "Grafana's login (never the chart's published default, never a password in the chart values).",
    )
    receivers: list[AlertmanagerReceiver] = Field(
        default_factory=list, description="Alertmanager receivers; none means alerts are only visible in the UI."
    )
    values: dict[str, object] = Field(
        default_factory=dict,
        description="Raw kube-prometheus-stack values, merged over ours as written: prefer the typed options; "
        "the policy pack reads them like every chart value, and prod needs a waiver of helm-raw-values.",
    )
    logs: LogsConfig = Field(
        default_factory=LogsConfig, description="Container logs in Loki, with kube-prometheus-stack."
    )
    alerts: AlertThresholds = Field(
        default_factory=AlertThresholds, description="SLO thresholds of the alert rules (docs/runbooks.md)."
    )

    @property
    def collects_logs(self) -> bool:
        """Loki and the collector are installed beside the chart, never for a Prometheus the stack does not own."""
        return self.mode == "kube-prometheus-stack" and self.logs.enabled
