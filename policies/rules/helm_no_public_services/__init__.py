"""SLM-HELM-001: chart values must not ask for a public load balancer or a node port.

A chart's Service is created by Helm, not by Pulumi: the pack never sees it as a Service, only the values
that shape it. Any mapping in the values with ``type: LoadBalancer`` (a Service spec, whatever the chart
calls it) must carry the internal-load-balancer annotation; ``type: NodePort`` opens a port on every node.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.helm import HELM_RELEASE, dotted, values, walk
from ...lib.k8s import get, is_map
from ...lib.rule import AKS, NSA, Rule

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    for path, mapping in walk(values(args.props)):
        kind = mapping.get("type")
        if kind == "NodePort":
            yield f"values {dotted(path)} asks for a NodePort Service: it opens the port on every node"
        if kind != "LoadBalancer":
            continue
        annotations = get(mapping, "annotations", default={})
        if is_map(annotations) and str(annotations.get(INTERNAL, "")).lower() == "true":
            continue
        yield (
            f'values {dotted(path)} asks for a LoadBalancer Service without {INTERNAL}: "true": it gets a public '
            "IP; keep it ClusterIP (reach it through the entry point or kubectl port-forward) or make it internal"
        )


RULE = Rule(
    id="SLM-HELM-001",
    name="helm-no-public-services",
    title="Helm chart values must not expose a public load balancer or a node port",
    severity="high",
    rationale="Monitoring UIs and operators installed by charts (Grafana, Prometheus, Alertmanager) have weak or no "
    "authentication of their own; a public IP puts them on the internet.",
    remediation="Remove the service type override, or annotate it as an internal load balancer.",
    controls={NSA: ("Network separation and hardening",), AKS: ("NS-2: secure cloud services with network controls",)},
    resource_types=frozenset({HELM_RELEASE}),
    check=check,
)
