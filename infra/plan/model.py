"""What the offline plan records for each resource the program registers.

The shape mirrors what the Pulumi engine hands to a policy analyzer (type, URN, name, inputs,
options, parent, provider), so the same record feeds the renderer, the reports and the policy pack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Printed wherever a secret value would otherwise appear.
SECRET_TEXT = "[secret]"
#: Printed wherever a value is not known until the engine creates the resource.
UNKNOWN_TEXT = "[unknown]"


class Secret:
    """An input value the program marked secret; the value is kept only for the policy analyzer."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return SECRET_TEXT

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(SECRET_TEXT)


class Unknown:
    """An input value that is not known during preview (an output of another resource)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return UNKNOWN_TEXT

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown)

    def __hash__(self) -> int:
        return hash(UNKNOWN_TEXT)


UNKNOWN = Unknown()


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration as the engine would see it.

    ``inputs`` use the engine's property names (camelCase, as in Kubernetes manifests); nested
    values may be :class:`Secret` or :data:`UNKNOWN`. ``parent`` and ``provider`` are URNs.
    """

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    parent: str | None = None
    provider: str | None = None
    protect: bool = False
    dependencies: tuple[str, ...] = field(default_factory=tuple)
    #: Input properties the engine leaves alone on update (``ignore_changes``).
    ignore_changes: tuple[str, ...] = field(default_factory=tuple)
    #: A placeholder answer of the mock engine (an invoke or a computed output), not a real value.
    placeholder_outputs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_component(self) -> bool:
        return not self.custom

    @property
    def kind(self) -> str:
        """The short type name: ``Deployment`` for ``kubernetes:apps/v1:Deployment``."""
        return self.type.rsplit(":", 1)[-1]


def reveal(value: Any) -> Any:
    """The plain value with secrets unwrapped and unknowns as ``None`` (for the analyzer only)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, Unknown):
        return None
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """The value as people and files may see it: secrets and unknowns as text markers."""
    if isinstance(value, Secret):
        return SECRET_TEXT
    if isinstance(value, Unknown):
        return UNKNOWN_TEXT
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
