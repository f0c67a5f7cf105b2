"""What a model server asks of its node: CPU and memory, GPUs and their pool, the model cache volume."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import ConfigModel
from infra.config.names import DnsLabel, Quantity, StorageClassName
from infra.config.quantity import parse_quantity


class ResourceList(ConfigModel):
    """CPU and memory for one side (requests or limits) of a container."""

    cpu: Quantity = Field(description="CPU cores, as a Kubernetes quantity (`500m`, `2`).")
    memory: Quantity = Field(description="Memory, as a Kubernetes quantity (`512Mi`, `16Gi`).")


class Resources(ConfigModel):
    """Requests and limits of a container (the model server's by default); both are always set."""

    requests: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="2", memory="8Gi"),
        description="What the scheduler reserves for the server.",
    )
    limits: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="4", memory="16Gi"),
        description="The ceiling; memory beyond it kills the container.",
    )

    def as_kubernetes(self) -> dict[str, dict[str, str]]:
        """As a container's ``resources`` field."""
        return {
            "requests": {"cpu": self.requests.cpu, "memory": self.requests.memory},
            "limits": {"cpu": self.limits.cpu, "memory": self.limits.memory},
        }

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        for key in ("cpu", "memory"):
            request, limit = getattr(self.requests, key), getattr(self.limits, key)
            if parse_quantity(limit) < parse_quantity(request):
                raise ValueError(f"limits.{key} {limit} is below requests.{key} {request}")
        return self


class Gpu(ConfigModel):
    """GPUs for one replica, and the GPU node pool it runs on."""

    count: int = Field(0, ge=0, description="GPUs per replica (0 for CPU serving).")
    pool: DnsLabel = Field("gpu", description="Name of the GPU node pool the server is scheduled on.")
    vm_size: str | None = Field(
        None,
        description="Azure VM size of that pool's nodes (e.g. Standard_NC4as_T4_v3); sizing checks the model fits it.",
    )
    resource: Literal["nvidia.com/gpu"] = Field("nvidia.com/gpu", description="Extended resource name.")


class CacheVolume(ConfigModel):
    """The PersistentVolumeClaim that holds downloaded weights, so restarts do not fetch them again."""

    size: Quantity = Field("50Gi", description="Capacity of the model cache.")
    storage_class: StorageClassName | None = Field(
        None, description="StorageClass name (a DNS subdomain); the cluster default when unset."
    )
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = Field(
        "ReadWriteOnce", description="ReadWriteMany lets replicas on several nodes share one cache."
    )
