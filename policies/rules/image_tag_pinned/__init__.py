"""SLM-K8S-014: images pinned by tag (not latest), and by digest when required."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.images import parse_image
from ...lib.k8s import WORKLOAD_TYPES, containers, get, pod_template
from ...lib.rule import NSA, Rule


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    require_digest = bool(config.get("requireDigest", False))
    for c in containers(pod.spec):
        image = get(c.body, "image")
        if not image:
            yield f"{c.label} has no image"
            continue
        ref = parse_image(str(image))
        if ref.digest:
            continue
        if require_digest:
            yield f"{c.label}: image {image} is not pinned by digest (@sha256:...)"
        elif ref.tag is None or ref.tag == "latest":
            yield f"{c.label}: image {image} has no fixed tag (missing or latest)"


RULE = Rule(
    id="SLM-K8S-014",
    name="image-tag-pinned",
    title="Images must be pinned to a version tag, or a digest when required",
    severity="high",
    rationale="A moving tag changes what runs without a change to the code; a digest makes a deployment reproducible.",
    remediation="Use an explicit version tag; in production pin the image by digest (image@sha256:...).",
    controls={NSA: ("Building secure container images",)},
    checkov=("CKV_K8S_14", "CKV_K8S_43"),
    resource_types=WORKLOAD_TYPES,
    config={"requireDigest": {"type": "boolean", "default": False, "description": "Require image@sha256 digests."}},
    check=check,
)
