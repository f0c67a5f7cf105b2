"""Container image references: registry, repository, tag and digest as the container runtime reads them."""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def path(self) -> str:
        return f"{self.registry}/{self.repository}"


def parse_image(reference: str) -> ImageRef:
    """Split an image reference; a reference without a registry host is on Docker Hub.

    ``vllm/vllm-openai:v0.9.2`` is ``docker.io/vllm/vllm-openai`` and ``busybox`` is
    ``docker.io/library/busybox``. The first path component is a registry host when it contains a
    dot or a colon or is ``localhost``.
    """
    rest, _, digest = reference.strip().partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first.lower(), remainder
    else:
        registry, path = DOCKER_HUB, rest
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    last = path.rsplit("/", 1)[-1]
    tag: str | None = None
    if ":" in last:
        path, _, tag = path.rpartition(":")
    return ImageRef(registry, path, tag or None, digest or None)


def registry_allowed(image: ImageRef, allowed: list[str]) -> bool:
    """``allowed`` holds registry hosts (``ghcr.io``) or host/path prefixes (``ghcr.io/my-org``)."""
    for entry in allowed:
        entry = entry.strip().rstrip("/").lower()
        if not entry:
            continue
        host, _, prefix = entry.partition("/")
        if host in _DOCKER_HUB_ALIASES:
            host = DOCKER_HUB
        if image.registry != host:
            continue
        if not prefix or image.repository.lower() == prefix or image.repository.lower().startswith(prefix + "/"):
            return True
    return False
