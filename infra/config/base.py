"""The base of every stack-config model: camelCase keys as Pulumi stack files use, unknown keys refused."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

#: The config namespace of the project in a stack file (``slm-deploy:<key>``).
NAMESPACE = "slm-deploy"
#: A place in the stack config: keys (camelCase) and list indexes, from the top of the namespace.
KeyPath = tuple[str | int, ...]


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


def format_key_path(loc: Sequence[str | int]) -> str:
    """``("models", 1, "engine")`` → ``slm-deploy:models[1].engine``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return f"{NAMESPACE}:{text}" if text else NAMESPACE
