"""SLM-K8S-008: no hostPort."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, items, pod_template
from ...lib.rule import NSA, PSS, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        for port in items(get(c.body, "ports")):
            host_port = get(port, "hostPort")
            if host_port is not None and float(host_port) != 0:
                yield f"{c.label}: hostPort {int(float(host_port))} binds a port on the node"


RULE = Rule(
    id="SLM-K8S-008",
    name="no-host-ports",
    title="Containers must not bind host ports",
    severity="medium",
    rationale="A hostPort bypasses Services and network policies and pins the pod to nodes with that port free.",
    remediation="Remove hostPort; expose the container through a Service.",
    controls={PSS: ("baseline: Host Ports",), NSA: ("Network separation and hardening",)},
    checkov=("CKV_K8S_26",),
    resource_types=WORKLOAD_TYPES,
    check=check,
)
