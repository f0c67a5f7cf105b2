"""Queue-based autoscaling of a model (`autoscaling:`), its resource recommendations (`vpa:`), and KEDA itself
(`keda:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import ConfigModel
from infra.config.names import DnsLabel


class ScaleToZero(ConfigModel):
    """Let an idle model go to zero replicas; the KEDA HTTP add-on's interceptor holds the first request after idle
    while a replica starts, so it is served, not refused (docs/scale-to-zero.md)."""

    enabled: bool = Field(
        False,
        description="Scale to zero when idle (needs `autoscaling.minReplicas: 0`, backend `keda`, and the KEDA HTTP "
        "add-on: `keda.httpAddOn.install`, or installed on the cluster).",
    )
    idle_seconds: int = Field(
        900, ge=60, description="How long without a request before the last replica goes (ScaledObject cooldownPeriod)."
    )
    wake_timeout_seconds: int | None = Field(
        None,
        ge=10,
        description="How long the interceptor holds a request while a replica starts (HTTPScaledObject "
        "`timeouts.conditionWait`); default: the model's `startupTimeoutSeconds`, the time its startup probe allows.",
    )
    response_header_timeout_seconds: int = Field(
        600,
        ge=1,
        description="How long the interceptor waits for the response headers once the request is sent (a "
        "completion that does not stream sends them only at its end).",
    )
    concurrency_per_replica: int = Field(
        32,
        ge=1,
        description="In-flight requests per replica the interceptor's trigger aims at; it wakes the model on the "
        "first request, the queue trigger scales it beyond.",
    )


class Autoscaling(ConfigModel):
    """Scale a model on its queue of waiting requests (KEDA), not on GPU utilisation."""

    enabled: bool = Field(False, description="Let KEDA (or an HPA) own the replica count.")
    backend: Literal["keda", "hpa"] = Field(
        "keda", description="`keda`: a ScaledObject on Prometheus; `hpa`: an HPA on the Prometheus adapter's metric."
    )
    min_replicas: int = Field(1, ge=0, description="Lower bound; 0 (scale to zero) only outside prod.")
    max_replicas: int = Field(4, ge=1, description="Upper bound; must fit the GPU pool's node limit.")
    target_queue_per_replica: float = Field(
        5, gt=0, description="Waiting requests per replica (`vllm:num_requests_waiting`) that trigger a scale-up."
    )
    scale_up_stabilization_seconds: int = Field(
        0, ge=0, description="React at once to a growing queue; new replicas take minutes to load anyway."
    )
    scale_down_stabilization_seconds: int = Field(
        900, ge=0, description="Wait this long before removing replicas: reloading a model is expensive."
    )
    polling_interval_seconds: int = Field(15, ge=5, description="How often KEDA queries Prometheus.")
    scale_to_zero: ScaleToZero = Field(
        default_factory=ScaleToZero, description="Scale an idle model to zero (KEDA HTTP add-on); outside prod only."
    )
    hpa_metric: str = Field(
        "vllm_num_requests_waiting",
        description="Per-pod metric name as the Prometheus adapter exposes it (backend `hpa`).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}")
        if self.backend == "hpa" and (self.min_replicas == 0 or self.scale_to_zero.enabled):
            raise ValueError("an HPA cannot scale to zero: use backend keda, or minReplicas >= 1")
        if not self.enabled:
            return self
        if self.min_replicas == 0 and not self.scale_to_zero.enabled:
            raise ValueError(
                "minReplicas 0 without scaleToZero.enabled: nothing would hold the first request after idle while a "
                "replica starts (it would be refused); enable scaleToZero or set minReplicas >= 1"
            )
        if self.scale_to_zero.enabled and self.min_replicas != 0:
            raise ValueError(f"scaleToZero.enabled needs minReplicas 0 (got {self.min_replicas})")
        return self


#: VerticalPodAutoscaler update modes (autoscaling.k8s.io/v1). ``Off`` only records recommendations; the others
#: evict or resize pods to apply them, which the pack refuses for GPU servers (policy ``vpa-gpu-recommendation-only``).
VpaUpdateMode = Literal["Off", "Initial", "Recreate", "InPlaceOrRecreate"]


class VerticalAutoscaling(ConfigModel):
    """A VerticalPodAutoscaler that recommends CPU and memory requests for the server (docs/sizing.md)."""

    enabled: bool = Field(
        False, description="Create a VerticalPodAutoscaler for the server (the cluster must run the VPA recommender)."
    )
    update_mode: VpaUpdateMode = Field(
        "Off",
        description="`Off`: recommendations only (read them with `kubectl describe vpa`). Any other mode restarts "
        "or resizes pods to apply them; the policy pack refuses that for GPU servers, where a restart reloads "
        "the model and a new pod may wait for a free GPU.",
    )


class HttpAddOnInstall(ConfigModel):
    """The KEDA HTTP add-on (interceptor, external scaler, operator), for models that scale to zero."""

    install: bool = Field(
        False,
        description="Install the KEDA HTTP add-on (pinned Helm release) in KEDA's namespace; leave false when the "
        "cluster already runs it there.",
    )


class AutoscalerInstall(ConfigModel):
    """KEDA itself, when the stack installs it."""

    install: bool = Field(False, description="Install KEDA (pinned Helm release) for the ScaledObjects.")
    namespace: DnsLabel = Field("keda", description="KEDA's namespace (and the HTTP add-on's).")
    http_add_on: HttpAddOnInstall = Field(
        default_factory=HttpAddOnInstall, description="The KEDA HTTP add-on, for models that scale to zero."
    )
