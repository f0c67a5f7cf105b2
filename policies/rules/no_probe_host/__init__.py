"""SLM-K8S-026: probes and lifecycle hooks target the pod itself, never another host (PSS baseline, v1.34+)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import NSA, PSS, Rule

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HOOKS = ("postStart", "preStop")
ACTIONS = ("httpGet", "tcpSocket")


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for c in containers(pod.spec):
        handlers = [(p, get(c.body, p)) for p in PROBES] + [
            (f"lifecycle.{h}", get(c.body, "lifecycle", h)) for h in HOOKS
        ]
        for where, handler in handlers:
            for action in ACTIONS:
                host = get(handler, action, "host")
                if host not in (None, ""):
                    yield f"{c.label}: {where}.{action}.host is {host!r}; probes and hooks must target the pod itself"


RULE = Rule(
    id="SLM-K8S-026",
    name="no-probe-host",
    title="Probes and lifecycle hooks must not set a host",
    severity="medium",
    rationale=(
        "The kubelet runs probes and hooks from the node: a host field makes it connect to any address the node "
        "can reach, which turns the pod spec into a way to reach node-local and internal services."
    ),
    remediation="Remove host from httpGet and tcpSocket in probes and lifecycle hooks (the pod IP is the default).",
    controls={PSS: ("baseline: Host Probes / Lifecycle Hooks",), NSA: ("Network separation and hardening",)},
    resource_types=WORKLOAD_TYPES,
    check=check,
)
