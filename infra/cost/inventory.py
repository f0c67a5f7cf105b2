"""What is billed, read from rendered objects: node pools, the AKS tier, load balancers, volumes, model pods.

Rendered documents (``slm-deploy render`` files, or a plan's manifests) are the input on purpose: ``diff``
prices its base from a render made by the base's own code, so the before and after figures come from the
same kind of data. Numbers may be floats (the engine's inputs) or strings (quantities); both are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from infra import gpu
from infra.config.quantity import gibibytes, parse_quantity
from infra.sizing.slices import mig_slice
from infra.sizing.vm_sizes import get_vm_size
from policies.lib.k8s import is_gpu_resource

#: The label every object of a model carries: its name in the stack.
INSTANCE_LABEL = "app.kubernetes.io/instance"
MODEL_SERVER_COMPONENT = "model-server"
#: Pods priced by what they request: the model servers, the endpoint pickers of InferencePools and the rate
#: limit's Redis (docs/quotas.md) (CPU only).
PRICED_COMPONENTS = frozenset({MODEL_SERVER_COMPONENT, "endpoint-picker", "rate-limit-store"})
_INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"


@dataclass(frozen=True)
class Pool:
    name: str
    vm_size: str
    min_count: int
    #: ``None``: no bound (a Karpenter NodePool without ``limits``): the maximum is not priced.
    max_count: int | None
    mode: str
    #: A spot pool (``scaleSetPriority: Spot``): priced at the spot figure when the table has one.
    spot: bool = False
    #: Replicas one GPU holds: 1, the MIG slices of its ``gpuInstanceProfile``, or the time slices of its device
    #: plugin config (the ConfigMap entry its nodes' ``nvidia.com/device-plugin.config`` label names).
    slices_per_gpu: int = 1
    #: Provisioned on demand (a Karpenter NodePool): it holds the nodes its pods need, from none.
    on_demand: bool = False


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


def _mig_slices(vm_size: str, profile: Any) -> int:
    try:
        return mig_slice(get_vm_size(vm_size), str(profile)).per_gpu
    except (LookupError, KeyError):
        return 1


def _pool(entry: Mapping[str, Any], name: str, mode: str, time_slices: Mapping[str, int]) -> Pool:
    count = _int(entry.get("count"), 1)
    if entry.get("enableAutoScaling"):
        low, high = _int(entry.get("minCount"), count), _int(entry.get("maxCount"), count)
    else:
        low = high = count
    spot = str(entry.get("scaleSetPriority") or "").lower() == "spot"
    vm_size = str(entry.get("vmSize", ""))
    slices = 1
    if entry.get("gpuInstanceProfile"):
        slices = _mig_slices(vm_size, entry["gpuInstanceProfile"])
    config = (entry.get("nodeLabels") or {}).get(gpu.DEVICE_PLUGIN_CONFIG_LABEL)
    if config is not None:
        slices *= time_slices.get(str(config), 1)
    return Pool(name=name, vm_size=vm_size, min_count=low, max_count=high, mode=mode, spot=spot, slices_per_gpu=slices)


def _node_pool(document: Mapping[str, Any], pool_label: str, time_slices: Mapping[str, int]) -> Pool | None:
    """A Karpenter NodePool of one VM size (node auto-provisioning): no node at least, at most the nodes its
    ``limits`` of GPUs allow (``None`` without limits); ``None`` when it names no single VM size."""
    spec = document.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    requirements = {
        str(r.get("key")): [str(v) for v in r.get("values") or []]
        for r in (template.get("spec") or {}).get("requirements") or []
        if isinstance(r, Mapping) and r.get("operator") == "In"
    }
    sizes = requirements.get("node.kubernetes.io/instance-type") or []
    if len(sizes) != 1:
        return None
    try:
        per_node = get_vm_size(sizes[0]).gpu_count
    except LookupError:
        per_node = 0
    # Only a GPU limit bounds GPU nodes here (a CPU or memory limit would too, less directly: not priced).
    limit = (spec.get("limits") or {}).get(gpu.NVIDIA_GPU)
    most = _int(limit) // per_node if limit is not None and per_node else None
    name = str(labels.get(pool_label) or (document.get("metadata") or {}).get("name", ""))
    config = labels.get(gpu.DEVICE_PLUGIN_CONFIG_LABEL)
    return Pool(
        name=name,
        vm_size=sizes[0],
        min_count=0,
        max_count=most,
        mode="User",
        spot=requirements.get("karpenter.sh/capacity-type") == ["spot"],
        slices_per_gpu=time_slices.get(str(config), 1) if config is not None else 1,
        on_demand=True,
    )


def _time_slices(document: Mapping[str, Any]) -> dict[str, int]:
    """Replicas per GPU of each entry of the device plugin's ConfigMap (``sharing.timeSlicing``; 1 when unset)."""
    found: dict[str, int] = {}
    for key, text in (document.get("data") or {}).items():
        try:
            config = yaml.safe_load(str(text)) or {}
        except yaml.YAMLError:
            continue
        resources = ((config.get("sharing") or {}).get("timeSlicing") or {}).get("resources") or []
        replicas = [_int(r.get("replicas"), 1) for r in resources if r.get("name") == gpu.NVIDIA_GPU]
        found[str(key)] = max(replicas, default=1)
    return found


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
        # Kubernetes takes an extended resource's request from its limit when only the limit is set. A GPU is a
        # whole one or a slice of a shared one (the pool says how many slices a GPU holds).
        for name in {*requests, *limits}:
            if is_gpu_resource(str(name)):
                gpus += _int(requests.get(name, limits.get(name)))
    return cpu, memory, gpus


def _load_balancer(name: str, spec: Mapping[str, Any], annotations: Mapping[str, Any]) -> LoadBalancer | None:
    if spec.get("type") != "LoadBalancer":
        return None
    return LoadBalancer(name=name, public=str(annotations.get(_INTERNAL_LB, "")).lower() != "true")


def read_inventory(documents: Iterable[Mapping[str, Any]], pool_label: str = gpu.POOL_LABEL) -> Inventory:
    """Everything billed that ``documents`` declare (objects of other kinds are ignored)."""
    region = tier = None
    pool_entries: list[tuple[Mapping[str, Any], str, str]] = []
    time_slices: dict[str, int] = {}
    node_pools: list[Mapping[str, Any]] = []
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
                pool_entries.append((profile, str(profile.get("name", "")), str(profile.get("mode", "System"))))
            outbound = (inputs.get("networkProfile") or {}).get("outboundType", "loadBalancer")
            if outbound == "loadBalancer":
                # AKS's own egress: a Standard load balancer with a public IP, whatever the workloads.
                balancers.append(LoadBalancer(name="aks-outbound", public=True))
        elif document.get("type") == "azure-native:containerservice:AgentPool":
            inputs = document.get("inputs") or {}
            pool_entries.append((inputs, str(inputs.get("agentPoolName", name)), str(inputs.get("mode", "User"))))
        elif kind == "NodePool" and str(document.get("apiVersion", "")).startswith("karpenter.sh/"):
            node_pools.append(document)
        elif kind == "ConfigMap" and name == gpu.DEVICE_PLUGIN_CONFIG_MAP:
            time_slices = _time_slices(document)
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
        pools=tuple(_pool(entry, name, mode, time_slices) for entry, name, mode in pool_entries)
        + tuple(p for d in node_pools if (p := _node_pool(d, pool_label, time_slices)) is not None),
        volumes=tuple(volumes),
        load_balancers=tuple(balancers),
        workloads=tuple(sorted(workloads, key=lambda w: w.model)),
    )
