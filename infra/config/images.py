"""Container images: a pinned tag, optionally a digest (stack keys `image`, `onnx.prepare.image`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from infra.config.base import ConfigModel


class ImageRef(ConfigModel):
    """A container image. The engine pins a default; a stack may pin another version or a digest."""

    repository: str = Field(description="Image repository, e.g. `vllm/vllm-openai`.")
    tag: str = Field(description="A version tag; `latest` is refused.")
    digest: str | None = Field(None, description="`sha256:…` digest; when set, the image is pulled by it.")

    @field_validator("tag")
    @classmethod
    def _not_latest(cls, value: str) -> str:
        if value == "latest" or not value:
            raise ValueError("'latest' is not a version: pin a release tag")
        return value

    @field_validator("digest")
    @classmethod
    def _digest_format(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("sha256:") and len(value) == 71):
            raise ValueError(f"'{value}' is not a sha256 digest (sha256: followed by 64 hex digits)")
        return value

    @property
    def reference(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref
