"""SLM-K8S-034: image volumes (model weights in an OCI image) pinned, and pulled in a way a reviewer accepts.

An image volume (``volumes[].image``, beta and on by default in Kubernetes 1.35:
kubernetes.io/docs/tasks/configure-pod-container/image-volumes) mounts an image's file system into the pod. What
it mounts is decided by its ``reference`` and ``pullPolicy``:

- a tag may move: with ``requireDigest`` (prod) the reference must carry ``@sha256:…``, and ``latest`` or no tag
  is refused at every level (a reference without a tag is ``latest``);
- ``Never`` mounts whatever a node holds under that name, content no registry vouched for and the allow-list
  (``allowed-image-registries``) never saw: refused at every level;
- ``allowedPullPolicies`` names the others a level accepts. Prod accepts only ``IfNotPresent``: with a digest the
  content is fixed, and ``Always`` makes every pod start (a restart, a scale-up) wait on the registry.

An unset ``pullPolicy`` is judged as the kubelet reads it: ``Always`` for ``latest``, ``IfNotPresent`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.finding import Finding
from ...lib.images import parse_image
from ...lib.k8s import WORKLOAD_TYPES, image_volumes, pod_template
from ...lib.rule import NSA, Rule

DEFAULT_PULL_POLICIES = ["IfNotPresent", "Always"]


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    require_digest = bool(config.get("requireDigest", False))
    allowed = {str(p) for p in config.get("allowedPullPolicies", DEFAULT_PULL_POLICIES)}
    for volume in image_volumes(pod.spec):
        if volume.reference is None:
            yield Finding(f"{volume.label} has no reference", subject=volume.name)
            continue
        ref = parse_image(volume.reference)
        moving = ref.digest is None and ref.tag in (None, "latest")
        policy = volume.pull_policy or ("Always" if moving else "IfNotPresent")
        if ref.digest is None and require_digest:
            yield Finding(
                f"{volume.label}: {volume.reference} is not pinned by digest (@sha256:...)", subject=volume.name
            )
        elif moving:
            yield Finding(
                f"{volume.label}: {volume.reference} has no fixed tag (missing or latest)", subject=volume.name
            )
        if policy == "Never":
            yield Finding(
                f"{volume.label}: pullPolicy Never mounts whatever a node holds under {volume.reference}, which no "
                "registry vouched for",
                subject=volume.name,
            )
        elif policy not in allowed:
            yield Finding(
                f"{volume.label}: pullPolicy {policy} is not in allowedPullPolicies ({', '.join(sorted(allowed))})",
                subject=volume.name,
            )


RULE = Rule(
    id="SLM-K8S-034",
    name="image-volume-pinned",
    title="Image volumes must be pinned (by digest when required) and never use pullPolicy Never",
    severity="high",
    rationale=(
        "An image volume puts an image's files (model weights) where the server loads them: a moving tag changes the "
        "model without a change to the code, and pullPolicy Never mounts unvetted node-local content."
    ),
    remediation=(
        "Pin the reference by digest (the one slm-deploy pack-weights printed; models[].weights.image.digest) and "
        "use pullPolicy IfNotPresent."
    ),
    controls={NSA: ("Building secure container images",)},
    resource_types=WORKLOAD_TYPES,
    config={
        "requireDigest": {"type": "boolean", "default": False, "description": "Require references @sha256 digests."},
        "allowedPullPolicies": {
            "type": "array",
            "items": {"type": "string", "enum": ["IfNotPresent", "Always"]},
            "default": DEFAULT_PULL_POLICIES,
            "description": "The pull policies accepted (Never is refused at every level).",
        },
    },
    check=check,
    subject="image volume",
)
