"""SLM-K8S-015: images only from allowed repositories (by repository path, not registry host).

A registry host is not a trust boundary: anyone can push ``docker.io/vllm-0penai/vllm-openai``. The pack
lists the repositories slm-deploy runs (``docker.io/vllm/vllm-openai``, ``ghcr.io/ggml-org/llama.cpp``,
``docker.io/ollama/ollama``, ``ghcr.io/open-webui/open-webui``, llm-d's endpoint picker); a level adds its own
(the ONNX server image it builds, a mirror) in ``allowedRepositories`` of ``policies/config/<level>.json``: an
exact repository path, or a path ending in ``/*`` for everything below an organisation's own namespace
(``myacr.azurecr.io/slm/*``). A bare image name is on Docker Hub (``busybox`` is ``docker.io/library/busybox``).
Image volumes (``volumes[].image.reference``: model weights, docs/image-volume-weights.md) are judged the same way:
the registry the weights are pushed to is listed per level, like the ONNX server image.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ...lib.finding import Finding
from ...lib.images import parse_image
from ...lib.k8s import WORKLOAD_TYPES, containers, get, image_volumes, pod_template
from ...lib.rule import AKS, NSA, Rule

DEFAULT_REPOSITORIES = [
    "docker.io/vllm/vllm-openai",
    "docker.io/ollama/ollama",
    "ghcr.io/ggml-org/llama.cpp",
    "ghcr.io/open-webui/open-webui",
    # llm-d's router endpoint picker, for models routed through an InferencePool (docs/inference-pool.md).
    "ghcr.io/llm-d/llm-d-router-endpoint-picker",
    # Redis of the entry point's global rate limit, for per-client token budgets (docs/quotas.md).
    "docker.io/library/redis",
]


@lru_cache(maxsize=64)
def _allow(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Exact repository paths (a set) and ``/*`` prefixes, normalised as image references are."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for entry in entries:
        text = entry.strip().lower()
        if text.endswith("/*"):
            ref = parse_image(text[:-2] + "/x")
            prefixes.append(ref.path[: -len("/x")] + "/")
        elif text:
            exact.add(parse_image(text).path)
    return frozenset(exact), tuple(prefixes)


def repository_allowed(path: str, entries: tuple[str, ...]) -> bool:
    exact, prefixes = _allow(entries)
    return path.lower() in exact or path.lower().startswith(prefixes)


def check(args: ResourceValidationArgs, config: Mapping[str, Any]) -> Iterator[str]:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    entries = tuple(str(r) for r in config.get("allowedRepositories", DEFAULT_REPOSITORIES))
    images = [(c.label, get(c.body, "image")) for c in containers(pod.spec)]
    images += [(volume.label, volume.reference) for volume in image_volumes(pod.spec)]
    for label, image in images:
        if not image:
            continue
        ref = parse_image(str(image))
        if not repository_allowed(ref.path, entries):
            yield Finding(
                f"{label}: image {image} is {ref.path}, which is not in allowedRepositories", subject=ref.path
            )


RULE = Rule(
    id="SLM-K8S-015",
    name="allowed-image-registries",
    title="Images must come from an allowed repository",
    severity="high",
    rationale=(
        "Pulling from arbitrary repositories lets typosquatted or tampered images into the cluster; a registry host "
        "such as docker.io holds anyone's images, so the allow-list names repositories."
    ),
    remediation=(
        "Use the engine's pinned repository, or mirror the image and add its repository path to allowedRepositories "
        "in policies/config/<level>.json in a reviewed change."
    ),
    controls={NSA: ("Building secure container images",), AKS: ("DS-6: workload lifecycle security",)},
    resource_types=WORKLOAD_TYPES,
    config={
        "allowedRepositories": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[^/*]+/.+$"},
            "default": DEFAULT_REPOSITORIES,
            "description": "Repository paths (`docker.io/vllm/vllm-openai`) or `/*` prefixes of a namespace "
            "(`myacr.azurecr.io/slm/*`); a registry host alone is not accepted.",
        }
    },
    check=check,
    subject="image repository",
)
