"""SLM-HELM-002: chart values must not run workloads as root, privileged, or in the host's namespaces.

The values are read wherever a chart takes pod or container settings: any mapping that sets
``privileged: true``, ``allowPrivilegeEscalation: true``, ``runAsUser: 0``, ``runAsNonRoot: false``,
``hostNetwork``/``hostPID``/``hostIPC: true``, a ``hostPath`` volume, or added capabilities beyond
``NET_BIND_SERVICE``. Components that a chart runs privileged *by default* must be switched off
(``PRIVILEGED_BY_DEFAULT``): leaving them on is a value choice too.

GPU drivers need the host (device files, the kubelet's device-plugin socket). They get it through a
scoped exemption in the pack's own config (``exemptions``: chart and namespace named, with the reason),
which a stack cannot extend: the rule never looks away for a chart in another namespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.helm import HELM_RELEASE, chart_name, dotted, release_namespace, values, walk
from ...lib.k8s import get, is_list, is_map
from ...lib.rule import NSA, PSS, Rule

#: Chart → (values path that must be false, what runs privileged when it is not).
PRIVILEGED_BY_DEFAULT: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "kube-prometheus-stack": [
        (
            ("nodeExporter", "enabled"),
            "the node exporter, with hostNetwork, hostPID and hostPath mounts of /, /proc, /sys",
        ),
    ],
}
#: Chart → (values path that must not be true, what it mounts from the node). Off by default in the chart, but a
#: switch away from a hostPath volume the values walk below would not see as one.
HOST_MOUNT_SWITCHES: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "alloy": [
        (("alloy", "mounts", "varlog"), "the node's /var/log (hostPath)"),
        (("alloy", "mounts", "dockercontainers"), "the node's /var/lib/docker/containers (hostPath)"),
    ],
}
#: Charts that run privileged by design (the whole chart), allowed only where ``exemptions`` names them.
PRIVILEGED_CHARTS = frozenset({"nvidia-device-plugin", "dcgm-exporter", "gpu-operator"})
DEFAULT_EXEMPTIONS = [
    {
        "chart": "nvidia-device-plugin",
        "namespace": "kube-system",
        "reason": "advertises GPUs through the kubelet's device-plugin socket (hostPath), as AKS documents",
    },
    {
        "chart": "dcgm-exporter",
        "namespace": "kube-system",
        "reason": "reads GPU telemetry from the driver (hostPath, SYS_ADMIN)",
    },
    {
        "chart": "gpu-operator",
        "namespace": "gpu-operator",
        "reason": "installs the NVIDIA driver and container toolkit on the node (privileged)",
    },
]
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _exempt(chart: str, namespace: str, config: Mapping[str, Any]) -> bool:
    exemptions = config.get("exemptions", DEFAULT_EXEMPTIONS)
    return any(
        is_map(entry) and entry.get("chart") == chart and entry.get("namespace") == namespace
        for entry in (exemptions if is_list(exemptions) else [])
    )


def _settings(mapping: Mapping[str, Any]) -> Iterator[str]:
    if mapping.get("privileged") is True:
        yield "privileged: true"
    if mapping.get("allowPrivilegeEscalation") is True:
        yield "allowPrivilegeEscalation: true"
    if mapping.get("runAsUser") == 0:
        yield "runAsUser: 0 (root)"
    if mapping.get("runAsNonRoot") is False:
        yield "runAsNonRoot: false"
    for field in _HOST_NAMESPACES:
        if mapping.get(field) is True:
            yield f"{field}: true"
    if is_map(mapping.get("hostPath")):
        yield "a hostPath volume"
    added = get(mapping, "capabilities", "add", default=[])
    extra = [str(c) for c in (added if is_list(added) else []) if str(c).upper() not in ("NET_BIND_SERVICE",)]
    if extra:
        yield f"capabilities added: {', '.join(extra)}"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    chart, namespace = chart_name(args.props), release_namespace(args.props)
    if _exempt(chart, namespace, config):
        return
    if chart in PRIVILEGED_CHARTS:
        yield (
            f"chart {chart} runs privileged by design and is exempted only in its documented namespace, "
            f"not in '{namespace}'"
        )
    chart_values = values(args.props)
    for path, what in PRIVILEGED_BY_DEFAULT.get(chart, []):
        if get(chart_values, *path) is not False:
            yield f"values {dotted(path)} is not false: {chart} then runs {what}"
    for path, what in HOST_MOUNT_SWITCHES.get(chart, []):
        if get(chart_values, *path) is True:
            yield f"values {dotted(path)} is true: {chart} then mounts {what}"
    for path, mapping in walk(chart_values):
        for setting in _settings(mapping):
            yield f"values {dotted(path)} sets {setting}"


RULE = Rule(
    id="SLM-HELM-002",
    name="helm-no-privileged-workloads",
    title="Helm chart values must not run workloads privileged, as root or in host namespaces",
    severity="critical",
    rationale="A chart's pods run in the cluster like ours; a privileged or host-namespaced pod of a monitoring "
    "chart is as much a node compromise as one of a model server.",
    remediation="Remove the setting, or switch the chart component off; GPU drivers are exempted by the pack only.",
    controls={
        PSS: ("baseline: Privileged Containers", "baseline: Host Namespaces", "baseline: HostPath Volumes"),
        NSA: ("Pod security: non-root and unprivileged containers",),
    },
    resource_types=frozenset({HELM_RELEASE}),
    config={
        "exemptions": {
            "type": "array",
            "default": DEFAULT_EXEMPTIONS,
            "description": "Charts allowed to run privileged, each with the one namespace it may do so in and why.",
        },
    },
    check=check,
)
