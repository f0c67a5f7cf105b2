"""Secret values from the stack config: they are never printed, logged or rendered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, PlainSerializer
from pydantic_core import PydanticCustomError, core_schema

from infra.config.base import KeyPathError

SECRET_TEXT = "[secret]"
#: Stands in, offline, for a secret only the stack's passphrase could decrypt; it is handed on as a
#: Pulumi secret like the real value, so nothing downstream can tell it apart by treatment.
OFFLINE_SECRET_PLACEHOLDER = "offline-placeholder-secret"


class SecretValue:
    """A value set with ``pulumi config set --secret``.

    ``plaintext`` is known in a real run (the CLI decrypts it) or when the offline plan was given
    the stack's passphrase; otherwise only the ciphertext is known and the plan uses a placeholder.
    """

    __slots__ = ("ciphertext", "plaintext")

    def __init__(self, plaintext: str | None = None, ciphertext: str | None = None) -> None:
        self.plaintext = plaintext
        self.ciphertext = ciphertext

    @property
    def known(self) -> bool:
        return self.plaintext is not None

    @property
    def plaintext_or_placeholder(self) -> str:
        """The value, or :data:`OFFLINE_SECRET_PLACEHOLDER` when only the ciphertext is known (offline)."""
        return self.plaintext if self.plaintext is not None else OFFLINE_SECRET_PLACEHOLDER

    def __repr__(self) -> str:
        return SECRET_TEXT

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SecretValue) and other.plaintext == self.plaintext and other.ciphertext == self.ciphertext
        )

    def __hash__(self) -> int:
        return hash((self.plaintext, self.ciphertext))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(_require_secret)


def _require_secret(value: Any) -> SecretValue:
    if isinstance(value, SecretValue):
        return value
    raise PydanticCustomError(
        "plain_secret",
        "must be a secret, not plain text: set it with `pulumi config set --secret --path <key> <value>`",
    )


#: A secret in a model: serialised (for JSON schema, dumps, reports) as the ``[secret]`` marker.
Secret = Annotated[SecretValue, PlainSerializer(lambda _value: SECRET_TEXT, return_type=str)]


def wrap_secure_values(value: Any) -> Any:
    """Replace the stack file's ``{secure: <ciphertext>}`` objects with :class:`SecretValue`."""
    if isinstance(value, dict):
        if set(value) == {"secure"} and isinstance(value["secure"], str):
            return SecretValue(ciphertext=value["secure"])
        return {k: wrap_secure_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wrap_secure_values(v) for v in value]
    return value


def mark_all_secret(value: Any) -> Any:
    """Treat every string below ``value`` as secret (a config key the CLI says is secret)."""
    if isinstance(value, str):
        return SecretValue(plaintext=value)
    if isinstance(value, dict):
        return {k: mark_all_secret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mark_all_secret(v) for v in value]
    return value


def named_secret(secrets: Mapping[str, SecretValue], name: str, path: tuple[str | int, ...]) -> SecretValue:
    """The secret ``name`` that the key at ``path`` refers to; a :class:`KeyPathError` there when it is missing.

    The message lists the secrets' names (never a value), so a typo is easy to see.
    """
    secret = secrets.get(name)
    if secret is None:
        known = ", ".join(sorted(secrets)) or "none"
        raise KeyPathError(path, f"names secret '{name}', which is not under secrets (known: {known})")
    return secret
