"""What monitoring needs to know about one model server."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.monitoring.metrics import ENGINES, EngineName

if TYPE_CHECKING:
    from infra.config.model import ModelConfig

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class MonitoredModel:
    """A model server as Prometheus sees it.

    The Deployment is named after the model, so its pods are ``<name>-<hash>-<suffix>``; the engine's
    ``model_name`` label is the served model name.
    """

    name: str
    namespace: str
    engine: EngineName
    served_model_name: str
    #: GPUs per replica; GPU alerts and panels only when above 0.
    gpu_count: int = 0
    #: Share of each GPU's memory the engine reserves up front (vLLM's ``gpuMemoryUtilization``).
    gpu_memory_reserved: float | None = None
    #: USD an hour for the nodes one replica occupies (price table; ``None``: not priced): the cost recording rules.
    replica_cost_per_hour: float | None = None
    #: The failure mode of the model's endpoint picker when it is routed through an InferencePool, else ``None``.
    endpoint_picker: str | None = None
    #: A canary rollout's revisions, stable then canary (``models[].versions``); empty without one.
    versions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field_name in ("name", "namespace"):
            value = getattr(self, field_name)
            if not _DNS_LABEL.match(value):
                raise ValueError(f"model {field_name} '{value}' is not a Kubernetes DNS label")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine '{self.engine}' (expected {', '.join(ENGINES)})")
        if not self.served_model_name:
            raise ValueError(f"model '{self.name}' has an empty served model name")
        if self.gpu_count < 0:
            raise ValueError(f"model '{self.name}' has a negative GPU count")
        if self.replica_cost_per_hour is not None and self.replica_cost_per_hour < 0:
            raise ValueError(f"model '{self.name}' has a negative replica cost")

    @classmethod
    def from_config(cls, model: ModelConfig, replica_cost_per_hour: float | None = None) -> MonitoredModel:
        """The monitoring view of a stack's model (``replica_cost_per_hour``: infra.cost.replica's figure)."""
        reserved = None
        if model.engine == "vllm" and model.gpu.count > 0:
            reserved = model.vllm.gpu_memory_utilization if model.vllm else 0.9
        return cls(
            name=model.name,
            namespace=model.k8s_namespace,
            engine=model.engine,
            served_model_name=model.api_model_name,
            gpu_count=model.gpu.count,
            gpu_memory_reserved=reserved,
            replica_cost_per_hour=replica_cost_per_hour,
            endpoint_picker=model.inference_pool.failure_mode if model.inference_pool.enabled else None,
            versions=(model.versions.stable.name, model.versions.canary.name) if model.versions is not None else (),
        )

    @property
    def deployment(self) -> str:
        return self.name

    @property
    def deployments(self) -> tuple[str, ...]:
        """The model's Deployments: one named after it, or one per revision (``<name>-<version>``)."""
        return tuple(f"{self.name}-{version}" for version in self.versions) or (self.name,)

    @property
    def deployment_matcher(self) -> str:
        """The PromQL matcher of the model's Deployments (``deployment="x"``, or a regex over the revisions')."""
        if len(self.deployments) == 1:
            return f"deployment={quote(self.deployment)}"
        return f"deployment=~{quote('|'.join(self.deployments))}"

    @property
    def pod_regex(self) -> str:
        """Matches the Deployments' pods and nothing else (not ``<name>-large-…``)."""
        if not self.versions:
            return f"{self.name}-[a-z0-9]+-[a-z0-9]+"
        return f"({'|'.join(self.deployments)})-[a-z0-9]+-[a-z0-9]+"


def quote(value: str) -> str:
    """A PromQL string literal."""
    return json.dumps(value)
