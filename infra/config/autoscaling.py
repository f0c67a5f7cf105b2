"""Queue-based autoscaling of a model (`autoscaling:`), its resource recommendations (`vpa:`), and KEDA itself
(`keda:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import ConfigModel
from infra.config.names import DnsLabel


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
    hpa_metric: str = Field(
        "vllm_num_requests_waiting",
        description="Per-pod metric name as the Prometheus adapter exposes it (backend `hpa`).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}")
        if self.backend == "hpa" and self.min_replicas == 0:
            raise ValueError("an HPA cannot scale to zero: use backend keda, or minReplicas >= 1")
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


class AutoscalerInstall(ConfigModel):
    """KEDA itself, when the stack installs it."""

    install: bool = Field(False, description="Install KEDA (pinned Helm release) for the ScaledObjects.")
    namespace: DnsLabel = Field("keda", description="KEDA's namespace.")
