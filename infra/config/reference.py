"""The configuration reference, generated from the pydantic models (docs/reference.md carries it)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from infra.config.stack import StackConfig

BEGIN = "<!-- BEGIN GENERATED CONFIG REFERENCE: `slm-deploy docs` rewrites this section -->"
END = "<!-- END GENERATED CONFIG REFERENCE -->"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _variant(model: type[BaseModel]) -> str | None:
    """What tells one member of a union of objects from the others: its first single-value Literal key."""
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal and len(typing.get_args(field.annotation)) == 1:
            return f"{field.alias or name}: {typing.get_args(field.annotation)[0]}"
    return None


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) > 1:
            return " or ".join(f"object (`{_variant(m)}`)" if _variant(m) else "object" for m in models)
        return " or ".join(_type_name(a) for a in members)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[1])}"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "object"
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "date"}.get(
            annotation.__name__, "secret" if annotation.__name__ == "SecretValue" else annotation.__name__
        )
    return str(annotation)


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if field.is_required() and extra.get("defaultFrom"):
        return f"from `{extra['defaultFrom']}`; **required** without it"
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    if value is None:
        return "unset"
    return f"`{json.dumps(value, default=str)}`"


def _section(model: type[BaseModel], path: str, seen: set[str], out: list[str], variant: str = "") -> None:
    """One table per object; ``variant`` names the union member it belongs to (``mode: aks``)."""
    out.append(f"#### `{path}`" + (f" (`{variant}`)" if variant else "") + "\n")
    out.append(f"{(model.__doc__ or '').strip()}\n")
    out.append("| key | type | default | description |")
    out.append("| --- | --- | --- | --- |")
    nested: list[tuple[type[BaseModel], str, str]] = []
    # Resolved annotations: a field typed through a forward reference would otherwise read ForwardRef('…').
    hints = typing.get_type_hints(model, include_extras=True)
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = hints.get(name, field.annotation)
        out.append(f"| `{key}` | {_type_name(annotation)} | {_default(field)} | {field.description or ''} |")
        children = _models_in(annotation)
        for child in children:
            suffix = "[]" if typing.get_origin(annotation) is list else ""
            child_path = f"{path}.{key}{suffix}" if path != "slm-deploy" else f"slm-deploy:{key}{suffix}"
            nested.append((child, child_path, (len(children) > 1 and _variant(child)) or variant))
    out.append("")
    for child, child_path, child_variant in nested:
        if child.__name__ not in seen:
            seen.add(child.__name__)
            _section(child, child_path, seen, out, child_variant)


def config_reference() -> str:
    """Markdown tables of every key a stack file may set."""
    out: list[str] = []
    _section(StackConfig, "slm-deploy", {StackConfig.__name__}, out)
    return "\n".join(out).rstrip() + "\n"


def replace_section(document: str, generated: str) -> str:
    """``document`` with the text between the markers replaced by ``generated``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError("the document has no generated config reference markers")
    return document[: start + len(BEGIN)] + "\n\n" + generated + "\n" + document[end:]
