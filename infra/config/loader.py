"""Reading a stack's config into :class:`StackConfig`, with one clear error naming file and key path."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from infra.config.base import KeyPathError
from infra.config.secrets import mark_all_secret, wrap_secure_values
from infra.config.stack import StackConfig

NAMESPACE = "slm-deploy"
STACKS_DIR = "stacks"


class StackConfigError(Exception):
    """A stack file that cannot be used. ``str()`` is the one line a user needs."""

    def __init__(self, source: str, key_path: str | None, message: str) -> None:
        self.source = source
        self.key_path = key_path
        self.message = message
        where = f"{source}: {key_path}" if key_path else source
        super().__init__(f"{where}: {message}")


def stack_file(stack: str, root: Path | None = None) -> Path:
    """Where the stack's config lives (``stackConfigDir: stacks`` in Pulumi.yaml)."""
    return (root or Path.cwd()) / STACKS_DIR / f"Pulumi.{stack}.yaml"


def format_key_path(loc: Sequence[str | int]) -> str:
    """``("models", 1, "engine")`` → ``slm-deploy:models[1].engine``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return f"{NAMESPACE}:{text}" if text else NAMESPACE


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "date_type": "a date (YYYY-MM-DD)",
    "date_parsing": "a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
}


def _message(error: ErrorDetails, allowed_keys: Sequence[str]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field = str(error["loc"][-1]) if error["loc"] else "value"
    if kind == "literal_error":
        expected = ", ".join(part.strip(" '") for part in str(ctx.get("expected", "")).replace(" or ", ", ").split(","))
        return f"unknown {field} {_describe(value)} (expected {expected})"
    if kind == "extra_forbidden":
        hint = f" (known keys: {', '.join(allowed_keys)})" if allowed_keys else ""
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        bound = next(iter(ctx.values()), "")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        return f"must be {words} {bound}, got {_describe(value)}"
    if kind == "too_short" and isinstance(value, list):
        return f"must list at least {ctx.get('min_length', 1)} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {_describe(value)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"])


def _allowed_keys(loc: Sequence[str | int]) -> list[str]:
    """camelCase keys of the model found at ``loc`` (for 'unknown key' hints)."""
    model: Any = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = model.model_fields
        match = next((f for name, f in fields.items() if (f.alias or name) == part), None)
        if match is None:
            return []
        model = _model_in(match.annotation)
        if model is None:
            return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _model_in(annotation: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def validate_stack_config(values: Mapping[str, Any], source: str) -> StackConfig:
    """Validate the ``slm-deploy`` namespace of a stack (keys without the ``slm-deploy:`` prefix)."""
    try:
        return StackConfig.model_validate(dict(values))
    except KeyPathError as error:
        raise StackConfigError(source, format_key_path(error.path), error.message) from None
    except ValidationError as error:
        errors = error.errors(include_url=False)
        first = errors[0]
        message = _message(first, _allowed_keys(first["loc"]) if first["type"] == "extra_forbidden" else [])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise StackConfigError(source, format_key_path(first["loc"]), message) from None


def _read_yaml(path: Path) -> Any:
    from yaml import YAMLError

    from infra.yamlio import load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackConfigError(str(path), None, "no such stack file") from None
    except OSError as error:
        raise StackConfigError(str(path), None, f"cannot be read ({error.strerror})") from None
    try:
        return load_yaml(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise StackConfigError(str(path), None, f"is not valid YAML{where}: {problem}") from None


def namespace_values(document: Any, source: str) -> dict[str, Any]:
    """The ``slm-deploy:`` keys of a stack file's ``config:`` mapping, secure values wrapped."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackConfigError(source, None, "expected a mapping with a 'config' key")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackConfigError(source, "config", "expected a mapping of config keys")
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == NAMESPACE and name:
            values[name] = wrap_secure_values(value)
    return values


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _environment_secrets() -> dict[str, Any]:
    """Plain secret values from ``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS``.

    The Pulumi CLI hands a program its config (decrypted) in these variables; the offline plan reads
    them the same way, so a pipeline that has the values can plan with them. They stay secrets.
    """
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
        secret_keys = set(json.loads(os.environ.get("PULUMI_CONFIG_SECRET_KEYS") or "[]"))
    except json.JSONDecodeError:
        raise StackConfigError("PULUMI_CONFIG", None, "is not JSON") from None
    prefix = f"{NAMESPACE}:"
    values: dict[str, Any] = {}
    for key, text in config.items():
        if key.startswith(prefix) and key in secret_keys:
            value: Any = text
            if isinstance(text, str) and text.lstrip()[:1] in ("{", "["):
                value = json.loads(text)
            values[key[len(prefix) :]] = mark_all_secret(value)
    return values


def load_stack_file(path: Path) -> StackConfig:
    """Read and validate a ``Pulumi.<stack>.yaml`` file (secret values may come from the environment)."""
    source = display_path(path)
    values = namespace_values(_read_yaml(path), source)
    values.update(_environment_secrets())
    return validate_stack_config(values, source)


def load_from_pulumi(stack: str) -> StackConfig:
    """Read the stack config the Pulumi CLI handed to the program (a real ``pulumi up``)."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    values: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    for key, text in raw.items():
        if not key.startswith(prefix):
            continue
        value: Any = text
        # The CLI hands structured values over as JSON text and scalars as plain text.
        if isinstance(text, str) and text.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
        values[key[len(prefix) :]] = mark_all_secret(value) if key in secret_keys else value
    return validate_stack_config(values, f"{STACKS_DIR}/Pulumi.{stack}.yaml")
