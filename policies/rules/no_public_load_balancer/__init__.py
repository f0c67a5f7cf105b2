"""SLM-NET-002: no public LoadBalancer Service unless explicitly allowed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import SERVICE, annotations_of, get
from ...lib.rule import AKS, NSA, Rule

INTERNAL = "service.beta.kubernetes.io/azure-load-balancer-internal"
EXPOSURE = "slm-deploy.io/public-exposure"


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    if get(args.props, "spec", "type") != "LoadBalancer":
        return
    annotations = annotations_of(args.props)
    if annotations.get(INTERNAL, "").lower() == "true":
        return
    if annotations.get(EXPOSURE) == "allowed" or config.get("allowPublicLoadBalancer") is True:
        return
    yield (
        "Service of type LoadBalancer gets a public IP; make it internal "
        f'({INTERNAL}: "true") or allow it explicitly ({EXPOSURE}: "allowed")'
    )


RULE = Rule(
    id="SLM-NET-002",
    name="no-public-load-balancer",
    title="Services must not get a public load balancer unless explicitly allowed",
    severity="high",
    rationale="A public load balancer puts an unauthenticated inference API on the internet.",
    remediation=(
        "Use ClusterIP behind an ingress/gateway, an internal load balancer, or annotate the Service as allowed."
    ),
    controls={NSA: ("Network separation and hardening",), AKS: ("NS-2: secure cloud services with network controls",)},
    resource_types=frozenset({SERVICE}),
    config={
        "allowPublicLoadBalancer": {
            "type": "boolean",
            "default": False,
            "description": "Allow public LoadBalancer Services in this environment.",
        }
    },
    check=check,
)
