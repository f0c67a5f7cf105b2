"""What is billed, read from rendered objects: node pools, the AKS tier, load balancers, volumes, model pods.

Rendered documents (``slm-deploy render`` files, or a plan's manifests) are the input on purpose: ``diff``
prices its base from a render made by the base's own code, so the before and after figures come from the
same kind of data. Numbers may be floats (the engine's inputs) or strings (quantities); both are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra import gpu
from infra.config.quantity import gibibytes, parse_quantity

#: The label every object of a model carries: its name in the stack.
INSTANCE_LABEL = "app.kubernetes.io/instance"
MODEL_SERVER_COMPONENT = "model-server"
#: Pods priced by what they request: the model servers and the endpoint pickers of InferencePools (CPU only).
PRICED_COMPONENTS = frozenset({MODEL_SERVER_COMPONENT, "endpoint-picker"})
GPU_RESOURCE = "nvidia.com/gpu"
_INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"


@dataclass(frozen=True)
class Pool:
    name: str
    vm_size: str
    min_count: int
    max_count: int
    mode: str
    #: A spot pool (``scaleSetPriority: Spot``): priced at the spot figure when the table has one.
    spot: bool = False


@dataclass(frozen=True)
class Volume:
    name: str
    model: str | None
    size_gib: float
    storage_class: str | None


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    public: bool


@dataclass(frozen=True)
class Workload:
    """A model server's pods: replicas (at the autoscaler's bounds) and what one replica requests."""

    model: str
    min_replicas: int
    max_replicas: int
    cpu: float
    memory_gib: float
    gpus: int
    pool: str | None


@dataclass(frozen=True)
class Inventory:
    region: str | None
    aks_tier: str | None
    pools: tuple[Pool, ...]
    volumes: tuple[Volume, ...]
    load_balancers: tuple[LoadBalancer, ...]
    workloads: tuple[Workload, ...]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _quantity(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    return float(parse_quantity(str(value)))


def _pool(entry: Mapping[str, Any], name: str, mode: str) -> Pool:
    count = _int(entry.get("count"), 1)
    if entry.get("enableAutoScaling"):
        low, high = _int(entry.get("minCount"), count), _int(entry.get("maxCount"), count)
    else:
        low = high = count
    spot = str(entry.get("scaleSetPriority") or "").lower() == "spot"
    return Pool(name=name, vm_size=str(entry.get("vmSize", "")), min_count=low, max_count=high, mode=mode, spot=spot)


def _labels(document: Mapping[str, Any]) -> Mapping[str, Any]:
    return (document.get("metadata") or {}).get("labels") or {}


def _containers_requests(template: Mapping[str, Any]) -> tuple[float, float, int]:
    cpu = memory = 0.0
    gpus = 0
    for container in (template.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu += _quantity(requests.get("cpu"))
        memory += gibibytes(str(requests["memory"])) if requests.get("memory") is not None else 0.0
        # Kubernetes takes an extended resource's request from its limit when only the limit is set.
        gpus += _int(requests.get(GPU_RESOURCE, limits.get(GPU_RESOURCE)))
    return cpu, memory, gpus


def _load_balancer(name: str, spec: Mapping[str, Any], annotations: Mapping[str, Any]) -> LoadBalancer | None:
    if spec.get("type") != "LoadBalancer":
        return None
    return LoadBalancer(name=name, public=str(annotations.get(_INTERNAL_LB, "")).lower() != "true")


def read_inventory(documents: Iterable[Mapping[str, Any]], pool_label: str = gpu.POOL_LABEL) -> Inventory:
    """Everything billed that ``documents`` declare (objects of other kinds are ignored)."""
    region = tier = None
    pools: list[Pool] = []
    volumes: list[Volume] = []
    balancers: list[LoadBalancer] = []
    deployments: dict[tuple[str, str], Workload] = {}
    scaled: dict[tuple[str, str], tuple[int, int]] = {}
    for document in documents:
        if not isinstance(document, Mapping):
            continue
        kind = document.get("kind")
        metadata = document.get("metadata") or {}
        name = str(metadata.get("name", ""))
        namespace = str(metadata.get("namespace", ""))
        if document.get("type") == "azure-native:containerservice:ManagedCluster":
            inputs = document.get("inputs") or {}
            region = str(inputs.get("location") or "") or None
            tier = str((inputs.get("sku") or {}).get("tier") or "Free")
            for profile in inputs.get("agentPoolProfiles") or []:
                pools.append(_pool(profile, str(profile.get("name", "")), str(profile.get("mode", "System"))))
            outbound = (inputs.get("networkProfile") or {}).get("outboundType", "loadBalancer")
            if outbound == "loadBalancer":
                # AKS's own egress: a Standard load balancer with a public IP, whatever the workloads.
                balancers.append(LoadBalancer(name="aks-outbound", public=True))
        elif document.get("type") == "azure-native:containerservice:AgentPool":
            inputs = document.get("inputs") or {}
            pools.append(_pool(inputs, str(inputs.get("agentPoolName", name)), str(inputs.get("mode", "User"))))
        elif kind == "PersistentVolumeClaim":
            spec = document.get("spec") or {}
            size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
            model = _labels(document).get(INSTANCE_LABEL)
            volumes.append(
                Volume(
                    name=name,
                    model=str(model) if model else None,
                    size_gib=gibibytes(str(size)) if size is not None else 0.0,
                    storage_class=spec.get("storageClassName"),
                )
            )
        elif kind == "Service":
            found = _load_balancer(name, document.get("spec") or {}, metadata.get("annotations") or {})
            if found is not None:
                balancers.append(found)
        elif kind == "EnvoyProxy":
            service = (((document.get("spec") or {}).get("provider") or {}).get("kubernetes") or {}).get(
                "envoyService"
            ) or {}
            found = _load_balancer(name, service, service.get("annotations") or {})
            if found is not None:
                balancers.append(found)
        elif kind == "Deployment" and _labels(document).get("app.kubernetes.io/component") in PRICED_COMPONENTS:
            spec = document.get("spec") or {}
            template = spec.get("template") or {}
            cpu, memory, gpus = _containers_requests(template)
            selector = (template.get("spec") or {}).get("nodeSelector") or {}
            replicas = _int(spec.get("replicas"), 1)
            deployments[(namespace, name)] = Workload(
                model=str(_labels(document).get(INSTANCE_LABEL) or name),
                min_replicas=replicas,
                max_replicas=replicas,
                cpu=cpu,
                memory_gib=memory,
                gpus=gpus,
                pool=str(selector[pool_label]) if pool_label in selector else None,
            )
        elif kind == "ScaledObject":
            spec = document.get("spec") or {}
            target = str((spec.get("scaleTargetRef") or {}).get("name", ""))
            scaled[(namespace, target)] = (_int(spec.get("minReplicaCount"), 0), _int(spec.get("maxReplicaCount"), 100))
    workloads = []
    for key, workload in deployments.items():
        if key in scaled:
            low, high = scaled[key]
            workload = Workload(**{**workload.__dict__, "min_replicas": low, "max_replicas": high})
        workloads.append(workload)
    return Inventory(
        region=region,
        aks_tier=tier,
        pools=tuple(pools),
        volumes=tuple(volumes),
        load_balancers=tuple(balancers),
        workloads=tuple(sorted(workloads, key=lambda w: w.model)),
    )
