"""Helpers to read Kubernetes resources as the Pulumi engine hands them to a policy.

Properties arrive through ``pulumi_policy``'s unknown-checking proxies: mappings are ``Mapping`` (not
``dict``) and lists are ``Sequence`` (not ``list``), and reading a value that is unknown during
preview raises. Nothing here catches that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: (API group, kind) of every resource that holds a pod template, and the path to the template.
#: ``None`` as path means the resource is the pod itself.
_WORKLOADS: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("core", "Pod"): None,
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("extensions", "Deployment"): ("spec", "template"),
    ("extensions", "DaemonSet"): ("spec", "template"),
    ("extensions", "ReplicaSet"): ("spec", "template"),
    ("core", "ReplicationController"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}
_VERSIONS = {
    "core": ("v1",),
    "apps": ("v1", "v1beta1", "v1beta2"),
    "extensions": ("v1beta1",),
    "batch": ("v1", "v1beta1"),
}

#: Every Pulumi type token of a resource with a pod template.
WORKLOAD_TYPES: frozenset[str] = frozenset(
    f"kubernetes:{group}/{version}:{kind}" for (group, kind) in _WORKLOADS for version in _VERSIONS[group]
)
#: Deployments and StatefulSets: the long-running, replicated workloads.
REPLICATED_TYPES: frozenset[str] = frozenset(
    t for t in WORKLOAD_TYPES if t.endswith((":Deployment", ":StatefulSet")) and ":extensions/" not in t
)

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB_TYPES = frozenset({"kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:policy/v1beta1:PodDisruptionBudget"})
#: ``app.kubernetes.io/component`` of a model server's pods (infra/components/labels.py).
MODEL_SERVER_COMPONENT = "model-server"
#: Extended resources that are whole GPUs.
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
#: On a model server's Deployment: why the server answers the namespaces its network policy lets in without an API
#: key (``directAccess.unauthenticatedReason``; infra/hardening.py writes it, SLM-SRV-002 reads it).
UNAUTHENTICATED_REASON = "slm-deploy.io/unauthenticated-direct-access"
#: A time-sliced NVIDIA GPU (the device plugin's ``sharing.timeSlicing`` with ``renameByDefault``).
TIME_SLICED_GPU = "nvidia.com/gpu.shared"
#: MIG slices (device plugin MIG strategy ``mixed``): ``nvidia.com/mig-<g>g.<memory>gb``.
MIG_PREFIX = "nvidia.com/mig-"


def is_gpu_resource(name: str) -> bool:
    """A GPU extended resource: a whole GPU, a time slice or a MIG slice of one."""
    return name in GPU_RESOURCES or name == TIME_SLICED_GPU or name.startswith(MIG_PREFIX)


def gpu_resources(container: Mapping[str, Any]) -> list[str]:
    """The GPU resources a container requests or limits, in order of first appearance."""
    names: list[str] = []
    for section in ("requests", "limits"):
        found = get(container, "resources", section)
        for name in found if isinstance(found, Mapping) else ():
            if is_gpu_resource(str(name)) and name not in names:
                names.append(str(name))
    return names


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """``value[path[0]][path[1]]...``, or ``default`` where a step is missing or of the wrong shape."""
    current = value
    for step in path:
        if isinstance(step, int):
            if not is_list(current) or step >= len(current):
                return default
            current = current[step]
        else:
            if not is_map(current) or step not in current:
                return default
            current = current[step]
        if current is None:
            return default
    return current


def items(value: Any) -> list[Any]:
    """The elements of a list property, or ``[]``."""
    return [value[i] for i in range(len(value))] if is_list(value) else []


@dataclass(frozen=True)
class PodTemplate:
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]


def pod_template(resource_type: str, props: Mapping[str, Any]) -> PodTemplate | None:
    """The pod template of a workload (the pod itself for a Pod), or None for other types."""
    if resource_type not in WORKLOAD_TYPES:
        return None
    _, group_version, kind = resource_type.split(":")
    path = _WORKLOADS[(group_version.split("/")[0], kind)]
    template = props if path is None else get(props, *path, default={})
    metadata = get(template, "metadata", default={})
    spec = get(template, "spec", default={})
    return PodTemplate(metadata if is_map(metadata) else {}, spec if is_map(spec) else {})


@dataclass(frozen=True)
class Container:
    list_name: str
    index: int
    body: Mapping[str, Any]

    @property
    def label(self) -> str:
        name = get(self.body, "name", default=f"#{self.index}")
        return f"{self.list_name}[{name}]"


def containers(spec: Mapping[str, Any], lists: tuple[str, ...] = CONTAINER_LISTS) -> Iterator[Container]:
    for list_name in lists:
        for index, body in enumerate(items(get(spec, list_name))):
            if is_map(body):
                yield Container(list_name, index, body)


@dataclass(frozen=True)
class ImageVolume:
    """A pod's ``volumes[].image`` (an OCI image mounted read-only): its volume name and source."""

    name: str
    #: ``spec.volumes[i]``: where a finding points.
    label: str
    reference: str | None
    pull_policy: str | None


def image_volumes(spec: Mapping[str, Any]) -> Iterator[ImageVolume]:
    """The image volumes of a pod spec; ``reference`` may be missing (workload controllers fill it in)."""
    for index, volume in enumerate(items(get(spec, "volumes"))):
        source = get(volume, "image")
        if not is_map(source):
            continue
        name = str(get(volume, "name", default=f"#{index}"))
        reference, policy = get(source, "reference"), get(source, "pullPolicy")
        yield ImageVolume(
            name,
            f"image volume '{name}'",
            str(reference) if reference else None,
            str(policy) if policy else None,
        )


def namespace_of(props: Mapping[str, Any]) -> str:
    """The resource's namespace; a missing namespace is ``default``, as the API server applies it."""
    value = get(props, "metadata", "namespace")
    return str(value) if value else "default"


def labels_of(metadata: Mapping[str, Any]) -> dict[str, str]:
    labels = get(metadata, "labels", default={})
    return {str(k): str(labels[k]) for k in labels} if is_map(labels) else {}


def annotations_of(props: Mapping[str, Any]) -> dict[str, str]:
    annotations = get(props, "metadata", "annotations", default={})
    return {str(k): str(annotations[k]) for k in annotations} if is_map(annotations) else {}


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Whether a ``LabelSelector`` selects pods with ``labels`` (an empty selector selects all)."""
    if not is_map(selector):
        return False
    match_labels = get(selector, "matchLabels", default={})
    if is_map(match_labels):
        for key in match_labels:
            if labels.get(str(key)) != str(match_labels[key]):
                return False
    for expression in items(get(selector, "matchExpressions")):
        key = str(get(expression, "key", default=""))
        operator = get(expression, "operator", default="")
        values = {str(v) for v in items(get(expression, "values"))}
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def is_model_server(pod: PodTemplate) -> bool:
    """Whether a pod template is a model server's (labelled ``app.kubernetes.io/component: model-server``)."""
    return labels_of(pod.metadata).get("app.kubernetes.io/component") == MODEL_SERVER_COMPONENT


def is_windows(spec: Mapping[str, Any]) -> bool:
    """Whether the pod declares ``spec.os.name: windows`` (the API then forbids Linux-only security fields)."""
    return bool(get(spec, "os", "name") == "windows")


def security_contexts(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(label, securityContext)`` of the pod (label ``pod``) and of every container that has one."""
    pod_context = get(spec, "securityContext")
    if is_map(pod_context):
        yield "pod", pod_context
    for c in containers(spec):
        context = get(c.body, "securityContext")
        if is_map(context):
            yield c.label, context


def effective(container: Container, spec: Mapping[str, Any], *path: str) -> Any:
    """A security-context field: the container's value, else the pod's (the container overrides)."""
    value = get(container.body, "securityContext", *path)
    if value is None:
        value = get(spec, "securityContext", *path)
    return value
