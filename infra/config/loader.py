"""Reading a stack's config into :class:`StackConfig`, with one clear error naming file and key path."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from infra.config.base import NAMESPACE, KeyPathError, format_key_path
from infra.config.k8s_names import show
from infra.config.secrets import SecretValue, mark_all_secret, wrap_secure_values
from infra.config.stack import StackConfig

STACKS_DIR = "stacks"
#: The one top-level key whose keys (secret names) are public: the stack file lists them, and other keys name them.
SECRETS_KEY = "secrets"
#: What an error says instead of a message that would quote something read from a secret.
WITHHELD = "the value is a secret, so this error shows no part of it"


class StackConfigError(Exception):
    """A stack file that cannot be used. ``str()`` is the one line a user needs."""

    def __init__(self, source: str, key_path: str | None, message: str) -> None:
        self.source = source
        self.key_path = key_path
        # One line, always: a value quoted in the message may hold a newline.
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.message = message
        where = f"{source}: {key_path}" if key_path else source
        super().__init__(f"{where}: {message}")


def stack_file(stack: str, root: Path | None = None) -> Path:
    """Where the stack's config lives (``stackConfigDir: stacks`` in Pulumi.yaml)."""
    return (root or Path.cwd()) / STACKS_DIR / f"Pulumi.{stack}.yaml"


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return show(value)
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


def _closest(word: str, choices: Collection[str]) -> str | None:
    """The choice ``word`` most likely meant (case and '-'/'_' aside), if one is close."""
    folded = {choice.lower().replace("-", "").replace("_", ""): choice for choice in choices}
    key = word.lower().replace("-", "").replace("_", "")
    if key in folded:
        return folded[key]
    found = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[found[0]] if found else None


def _message(error: ErrorDetails, allowed_keys: Sequence[str]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field = str(error["loc"][-1]) if error["loc"] else "value"
    if kind == "literal_error":
        expected = [part.strip(" '") for part in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")]
        guess = _closest(value, expected) if isinstance(value, str) else None
        hint = f"did you mean '{guess}'? " if guess else ""
        return f"unknown {field} {_describe(value)} ({hint}expected {', '.join(expected)})"
    if kind == "extra_forbidden":
        guess = _closest(field, allowed_keys)
        known = f"known keys: {', '.join(allowed_keys)}" if allowed_keys else ""
        if guess:
            return (
                f"unknown key (did you mean '{guess}'? {known})" if known else f"unknown key (did you mean '{guess}'?)"
            )
        return f"unknown key ({known})" if known else "unknown key"
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


def _withheld_message(kind: str) -> str:
    """What went wrong inside a secret value, in words that quote nothing from it."""
    if kind == "missing":
        what = "a required key is missing"
    elif kind == "extra_forbidden":
        what = "it has an unknown key"
    elif kind in _TYPE_NAMES:
        what = "a value has the wrong type"
    else:
        what = "a value is refused"
    return f"{what}; {WITHHELD}"


def _field_models(annotation: Any) -> list[Any]:
    """The models an annotation holds (one, or the members of a union), in order."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[Any] = []
    for arg in getattr(annotation, "__args__", ()):
        found += [model for model in _field_models(arg) if model not in found]
    return found


def _walk(loc: Sequence[str | int]) -> tuple[list[str | int], Any]:
    """``loc`` as a key path of the stack file, and the model it leads to (``None`` past a model's keys).

    Pydantic puts the tag of a discriminated union in the location (``cluster.aks.name``): it is no key of the
    stack file, so it is left out (``cluster.name``), and the walk goes on in the member it names.
    """
    model: Any = StackConfig
    path: list[str | int] = []
    parts = list(loc)
    index = 0
    while index < len(parts):
        part = parts[index]
        index += 1
        path.append(part)
        if isinstance(part, int) or model is None:
            continue
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            model = None
            continue
        members = _field_models(field.annotation)
        model = members[0] if members else None
        tag_key = field.discriminator if isinstance(field.discriminator, str) else None
        if tag_key and index < len(parts) and isinstance(parts[index], str):
            tags = {tag: member for member in members for tag in _literal_values(member, tag_key)}
            if parts[index] in tags:
                model = tags[parts[index]]
                index += 1
    return path, model


def _literal_values(model: Any, key: str) -> tuple[Any, ...]:
    field = model.model_fields.get(key)
    return tuple(getattr(field.annotation, "__args__", ())) if field is not None else ()


def _allowed_keys(loc: Sequence[str | int]) -> list[str]:
    """camelCase keys of the model found at ``loc`` (for 'unknown key' hints)."""
    model = _walk(loc[:-1])[1]
    if model is None:
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _strings_in(value: Any) -> Iterator[str]:
    """Every text in ``value``: keys and string leaves, and the keys and texts of a secret holding JSON."""
    if isinstance(value, SecretValue):
        if value.plaintext is not None:
            yield value.plaintext
            try:
                parsed = json.loads(value.plaintext)
            except ValueError:
                return
            yield from _strings_in(parsed)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


def _secrets_in(values: Mapping[str, Any], withheld: Collection[str]) -> set[str]:
    """Texts an error must never quote: what secrets hold, and all of a top-level key that is a secret as a whole."""
    found: set[str] = set()

    def secret_values(value: Any) -> Iterator[Any]:
        if isinstance(value, SecretValue):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from secret_values(item)
        elif isinstance(value, list):
            for item in value:
                yield from secret_values(item)

    for key, value in values.items():
        sources = [value] if key in withheld else list(secret_values(value))
        for source in sources:
            found.update(text for text in _strings_in(source) if len(text) >= 4)
    return found


def validate_stack_config(
    values: Mapping[str, Any], source: str, withheld: Collection[str] = frozenset()
) -> StackConfig:
    """Validate the ``slm-deploy`` namespace of a stack (keys without the ``slm-deploy:`` prefix).

    ``withheld``: top-level keys whose whole value is a secret (its structure is not in the stack file). An error
    inside one names only that key and says what kind of problem it is; and no message ever quotes a text
    read from a secret (a value, the keys of a secret's JSON).
    """
    secrets = _secrets_in(values, withheld)

    def fail(loc: Sequence[str | int], message: str, kind: str) -> StackConfigError:
        if loc and loc[0] in withheld and len(loc) > 1:
            return StackConfigError(source, format_key_path(loc[:1]), _withheld_message(kind))
        if any(secret in message for secret in secrets):
            return StackConfigError(source, format_key_path(loc[:2]), f"a value is refused; {WITHHELD}")
        return StackConfigError(source, format_key_path(loc), message)

    try:
        return StackConfig.model_validate(dict(values))
    except KeyPathError as error:
        raise fail(error.path, error.message, "cross-key") from None
    except ValidationError as error:
        errors = error.errors(include_url=False)
        # A misspelt key also makes the right one missing: the unknown key (with its suggestion) says more.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        message = _message(first, _allowed_keys(first["loc"]) if first["type"] == "extra_forbidden" else [])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise fail(_walk(first["loc"])[0], message, first["type"]) from None


def _yaml_key_path(where: Sequence[str | int]) -> str | None:
    """A YAML position (keys and indexes from the document's top) as a config key path, when it is one."""
    if len(where) >= 2 and where[0] == "config" and isinstance(where[1], str):
        namespace, _, name = where[1].partition(":")
        if namespace == NAMESPACE and name:
            return format_key_path([name, *where[2:]])
    return ".".join(str(part) for part in where) or None


def _read_yaml(path: Path, source: str | None = None) -> Any:
    from yaml import YAMLError

    from infra.config.yaml_limits import MAX_BYTES, YamlBoundsError, check_yaml_bounds
    from infra.yamlio import load_yaml

    source = source or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise StackConfigError(source, None, f"is {size} bytes, more than a stack file may be ({MAX_BYTES})")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StackConfigError(source, None, "no such stack file") from None
    except UnicodeDecodeError:
        raise StackConfigError(source, None, "is not UTF-8 text") from None
    except OSError as error:
        raise StackConfigError(source, None, f"cannot be read ({error.strerror})") from None
    try:
        # Before anything is built: an alias bomb, a structure without end, a repeated key.
        check_yaml_bounds(text)
    except YamlBoundsError as error:
        raise StackConfigError(source, _yaml_key_path(error.where), f"{error.message} (line {error.line})") from None
    try:
        return load_yaml(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise StackConfigError(source, None, f"is not valid YAML{where}: {problem}") from None


def namespace_values(document: Any, source: str) -> dict[str, Any]:
    """The ``slm-deploy:`` keys of a stack file's ``config:`` mapping, secure values wrapped.

    An empty file, a file without ``config:``, and a ``config:`` without ``slm-deploy:`` keys are refused as
    such; so are a key without a namespace and a namespace that looks like a misspelt ``slm-deploy`` (Pulumi
    would keep such a key for another program, and the stack would silently lack it).
    """
    if document is None:
        raise StackConfigError(
            source, None, "is empty: a stack file holds 'config:' with slm-deploy:environment and slm-deploy:models"
        )
    if not isinstance(document, dict):
        raise StackConfigError(source, None, "expected a mapping with a 'config' key")
    if "config" not in document:
        found = ", ".join(sorted(str(key) for key in document)) or "nothing"
        raise StackConfigError(
            source, None, f"has no 'config:' section, where the slm-deploy:* keys live (found: {found})"
        )
    config = document["config"]
    if config is None or config == {}:
        raise StackConfigError(source, "config", "is empty: set slm-deploy:environment and slm-deploy:models")
    if not isinstance(config, dict):
        raise StackConfigError(source, "config", "expected a mapping of config keys")
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, colon, name = str(key).partition(":")
        if namespace == NAMESPACE and name:
            values[name] = wrap_secure_values(value)
        elif not colon:
            raise StackConfigError(
                source, f"config.{key}", f"has no namespace: Pulumi refuses it; write {NAMESPACE}:{key}"
            )
        elif namespace != NAMESPACE and difflib.SequenceMatcher(None, namespace, NAMESPACE).ratio() >= 0.8:
            raise StackConfigError(
                source,
                f"config.{key}",
                f"unknown namespace '{namespace}' (did you mean {NAMESPACE}:{name}?): the key would be ignored",
            )
    if not values:
        found = ", ".join(sorted(str(key) for key in config))
        raise StackConfigError(
            source, "config", f"has no {NAMESPACE}:* keys (found: {found}): set slm-deploy:environment and models"
        )
    return values


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _structured(text: Any) -> Any:
    """A value the CLI hands over: structured values come as JSON text, scalars as plain text."""
    if isinstance(text, str) and text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            # Not JSON after all: the text itself (a secret is never quoted in the error that follows).
            return text
    return text


def _environment_secrets() -> dict[str, Any]:
    """Plain secret values from ``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS``.

    The Pulumi CLI hands a program its config (decrypted) in these variables; the offline plan reads
    them the same way, so a pipeline that has the values can plan with them. They stay secrets.
    """
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
        secret_keys = json.loads(os.environ.get("PULUMI_CONFIG_SECRET_KEYS") or "[]")
    except json.JSONDecodeError:
        raise StackConfigError("PULUMI_CONFIG", None, "is not JSON") from None
    if not isinstance(config, dict):
        raise StackConfigError("PULUMI_CONFIG", None, "is not a JSON object of config keys")
    if not isinstance(secret_keys, list):
        raise StackConfigError("PULUMI_CONFIG_SECRET_KEYS", None, "is not a JSON list of config keys")
    prefix = f"{NAMESPACE}:"
    values: dict[str, Any] = {}
    for key, text in config.items():
        if key.startswith(prefix) and key in secret_keys:
            values[key[len(prefix) :]] = mark_all_secret(_structured(text))
    return values


def _whole_secrets(secret_keys: Collection[str], shown: Mapping[str, Any]) -> set[str]:
    """Top-level keys that are secrets as a whole: their structure is nowhere in plain text.

    ``shown``: the stack file's values (a mapping there shows the key's structure, with only some leaves
    encrypted). ``secrets`` lists secret names the rest of the config refers to by name: never withheld.
    """
    return {key for key in secret_keys if key != SECRETS_KEY and not isinstance(shown.get(key), dict | list)}


def load_stack_file(path: Path) -> StackConfig:
    """Read and validate a ``Pulumi.<stack>.yaml`` file (secret values may come from the environment)."""
    source = display_path(path)
    values = namespace_values(_read_yaml(path, source), source)
    secrets = _environment_secrets()
    withheld = _whole_secrets(secrets, values)
    values.update(secrets)
    return validate_stack_config(values, source, withheld)


def load_from_pulumi(stack: str) -> StackConfig:
    """Read the stack config the Pulumi CLI handed to the program (a real ``pulumi up``)."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    values: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    secret_names: set[str] = set()
    for key, text in raw.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if key in secret_keys:
            secret_names.add(name)
        values[name] = mark_all_secret(_structured(text)) if key in secret_keys else _structured(text)
    # The CLI does not say which secret keys show their structure in the stack file: all are withheld.
    return validate_stack_config(values, f"{STACKS_DIR}/Pulumi.{stack}.yaml", _whole_secrets(secret_names, {}))
