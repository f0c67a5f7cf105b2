"""SLM-K8S-015: images only from allowed registries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.images import parse_image, registry_allowed
from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import AKS, NSA, Rule

DEFAULT_REGISTRIES = ["docker.io", "ghcr.io", "mcr.microsoft.com", "nvcr.io", "registry.k8s.io", "quay.io"]


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    allowed = [str(r) for r in config.get("allowedRegistries", DEFAULT_REGISTRIES)]
    for c in containers(pod.spec):
        image = get(c.body, "image")
        if not image:
            continue
        ref = parse_image(str(image))
        if not registry_allowed(ref, allowed):
            yield f"{c.label}: image {image} comes from {ref.registry}, which is not in allowedRegistries"


RULE = Rule(
    id="SLM-K8S-015",
    name="allowed-image-registries",
    title="Images must come from an allowed registry",
    severity="high",
    rationale="Pulling from arbitrary registries lets typosquatted or tampered images into the cluster.",
    remediation=(
        "Mirror the image into an allowed registry or add the registry to allowedRegistries in the policy config."
    ),
    controls={NSA: ("Building secure container images",), AKS: ("DS-6: workload lifecycle security",)},
    resource_types=WORKLOAD_TYPES,
    config={
        "allowedRegistries": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_REGISTRIES,
            "description": "Registry hosts or host/path prefixes; a bare image name is on docker.io.",
        }
    },
    check=check,
)
