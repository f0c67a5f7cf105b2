"""SLM-AVL-001: Deployments and StatefulSets run at least minReplicas replicas."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.k8s import REPLICATED_TYPES, get
from ...lib.rule import SLM, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    minimum = int(config.get("minReplicas", 2))
    replicas = get(args.props, "spec", "replicas")
    if replicas is None:
        yield f"spec.replicas is not set (Kubernetes defaults to 1); at least {minimum} required"
    elif float(replicas) < minimum:
        yield f"spec.replicas is {int(float(replicas))}; at least {minimum} required"


RULE = Rule(
    id="SLM-AVL-001",
    name="min-replicas",
    title="Deployments and StatefulSets must run at least minReplicas replicas",
    severity="medium",
    rationale="A single replica makes every node upgrade, eviction or crash an outage of the model endpoint.",
    remediation="Set spec.replicas to at least minReplicas (and size the GPU pool for it).",
    controls={SLM: ("Availability: redundancy",)},
    resource_types=REPLICATED_TYPES,
    config={"minReplicas": {"type": "integer", "minimum": 1, "default": 2, "description": "Smallest replica count."}},
    check=check,
)
