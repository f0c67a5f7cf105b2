"""Container images: a pinned tag, optionally a digest (stack keys `image`, `onnx.prepare.image`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from infra.config.base import ConfigModel
from infra.config.k8s_names import IMAGE_DIGEST, IMAGE_REPOSITORY, IMAGE_TAG, refuse


class ImageRef(ConfigModel):
    """A container image. The engine pins a default; a stack may pin another version or a digest."""

    repository: str = Field(
        description="Image repository: an optional registry host (`myregistry.azurecr.io/`), then lower-case path "
        "parts, e.g. `vllm/vllm-openai`; no tag or digest here."
    )
    tag: str = Field(
        description="A version tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`); `latest` is refused. The tag of a model's "
        "server image is also its `app.kubernetes.io/version` label, so it must be a label value too (at most 63, "
        "starting and ending with a letter or digit)."
    )
    digest: str | None = Field(None, description="`sha256:…` digest; when set, the image is pulled by it.")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return refuse(IMAGE_REPOSITORY, value)

    @field_validator("tag")
    @classmethod
    def _not_latest(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("'latest' is not a version: pin a release tag")
        return refuse(IMAGE_TAG, value)

    @field_validator("digest")
    @classmethod
    def _digest_format(cls, value: str | None) -> str | None:
        return None if value is None else refuse(IMAGE_DIGEST, value)

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref
