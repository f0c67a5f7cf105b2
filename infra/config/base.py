"""The base of every stack-config model: camelCase keys as Pulumi stack files use, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ConfigModel(BaseModel):
    """A section of the stack config. Keys are camelCase in the stack file, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
        validate_default=True,
    )


class KeyPathError(Exception):
    """A cross-field error at a known key path of the stack config (pydantic cannot place those)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
