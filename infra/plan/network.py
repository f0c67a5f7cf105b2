"""The allowed network flows of a plan, read back from the policies it renders (what a reviewer checks).

The table is computed from the recorded NetworkPolicy and CiliumNetworkPolicy inputs, not from the
component's intent, so it shows what the cluster will enforce.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from infra.components.labels import NAMESPACE_NAME_LABEL
from infra.plan.model import RecordedResource, reveal

CILIUM_NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
_SHORT_LABELS = ("app.kubernetes.io/instance", "k8s-app", "app.kubernetes.io/name")


@dataclass(frozen=True, order=True)
class AllowedFlow:
    """One allowed connection: ``source`` → ``destination`` on ``port``, and the policy that allows it."""

    namespace: str
    direction: str
    source: str
    destination: str
    port: str
    policy: str


def _pods(selector: Any) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    if not labels:
        return "*"
    for key in _SHORT_LABELS:
        if key in labels:
            return f"{key}={labels[key]}"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _peer(peer: dict[str, Any], own_namespace: str) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        excepts = block.get("except") or []
        return f"{block['cidr']} (except {', '.join(excepts)})" if excepts else str(block["cidr"])
    namespace_labels = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
    if "namespaceSelector" in peer:
        namespace = namespace_labels.get(NAMESPACE_NAME_LABEL, _pods(peer["namespaceSelector"]))
    else:
        namespace = own_namespace
    return f"{namespace}/{_pods(peer.get('podSelector'))}"


def _ports(ports: Any) -> list[str]:
    if not ports:
        return ["any"]
    return [f"{p.get('protocol', 'TCP')}/{p.get('port', 'any')}" for p in ports]


def _kubernetes_flows(namespace: str, name: str, spec: dict[str, Any]) -> list[AllowedFlow]:
    pods = f"{namespace}/{_pods(spec.get('podSelector'))}"
    flows = []
    for rule in spec.get("ingress") or []:
        for peer in rule.get("from") or [{}]:
            source = _peer(peer, namespace) if peer else "anywhere"
            flows += [AllowedFlow(namespace, "ingress", source, pods, p, name) for p in _ports(rule.get("ports"))]
    for rule in spec.get("egress") or []:
        for peer in rule.get("to") or [{}]:
            destination = _peer(peer, namespace) if peer else "anywhere"
            flows += [AllowedFlow(namespace, "egress", pods, destination, p, name) for p in _ports(rule.get("ports"))]
    return flows


def _cilium_flows(namespace: str, name: str, spec: dict[str, Any]) -> list[AllowedFlow]:
    pods = f"{namespace}/{_pods(spec.get('endpointSelector'))}"
    flows = []
    for rule in spec.get("egress") or []:
        ports = [p for to_port in rule.get("toPorts") or [] for p in to_port.get("ports") or []]
        destinations = [f.get("matchName") or f.get("matchPattern") for f in rule.get("toFQDNs") or []]
        for endpoint in rule.get("toEndpoints") or []:
            labels = dict(endpoint.get("matchLabels") or {})
            peer_namespace = labels.pop(CILIUM_NAMESPACE_LABEL, namespace)
            destinations.append(f"{peer_namespace}/{_pods({'matchLabels': labels})}")
        flows += [
            AllowedFlow(namespace, "egress", pods, str(destination), port, name)
            for destination in destinations
            for port in _ports(ports)
        ]
    return flows


def allowed_flows(resources: Iterable[RecordedResource]) -> list[AllowedFlow]:
    """Every flow the plan's network policies allow, sorted."""
    flows: list[AllowedFlow] = []
    for resource in resources:
        if not resource.custom:
            continue
        inputs = reveal(resource.inputs)
        metadata = inputs.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "default")), str(metadata.get("name", resource.name))
        if resource.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
            flows += _kubernetes_flows(namespace, name, inputs.get("spec") or {})
        elif resource.type == "kubernetes:cilium.io/v2:CiliumNetworkPolicy":
            flows += _cilium_flows(namespace, name, inputs.get("spec") or {})
    return sorted(flows)


def default_deny_namespaces(resources: Iterable[RecordedResource]) -> set[str]:
    """Namespaces with a policy that selects every pod for ingress and egress and allows nothing."""
    found = set()
    for resource in resources:
        if resource.type != "kubernetes:networking.k8s.io/v1:NetworkPolicy":
            continue
        inputs = reveal(resource.inputs)
        spec = inputs.get("spec") or {}
        if (
            not (spec.get("podSelector") or {}).get("matchLabels")
            and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
            and not spec.get("ingress")
            and not spec.get("egress")
        ):
            found.add(str((inputs.get("metadata") or {}).get("namespace", "default")))
    return found
