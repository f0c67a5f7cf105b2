"""Structured output: a `response_format` checked against the grammar limits and turned into og guidance.

onnxruntime-genai compiles a JSON schema with llguidance, whose Earley parser refuses a parse row of more than
2,000 items at generation time ("Current row has 2807 items; max is 2000"). The row grows with the choices
open at one point of the JSON: about four items per optional property of an object, about eleven per `anyOf`
branch (measured with the tiny test model: 600 optional properties or 200 three-property `anyOf` branches
fail on the first token; 256 optional properties or 128 one-property branches do not). In og.Engine that
failure made the whole engine unhealthy. So a schema is checked here, before any engine sees it, in the
prepare pool (off the event loop and off the scheduler thread):

- `max_bytes`: the schema's compact JSON text (what the grammar compiler reads);
- `max_properties`: properties plus `anyOf`/`oneOf` branches, summed over the whole schema (each is a choice
  the parser keeps open);
- `max_depth`: the nesting depth of the schema's JSON (objects and arrays).

`x-guidance` (llguidance's JSON compile options, read from the schema's top level) is allow-listed: only
`whitespace_flexible` (a boolean) is accepted; `whitespace_pattern` (a client's regular expression in the
lexer), `lenient`, `coerce_one_of` and separators are refused with a 400 naming the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .protocol import APIError, ResponseFormat

SCHEMA_PARAM = "response_format.json_schema.schema"
#: llguidance JSON options a client may set in `x-guidance`, with the type each must have.
ALLOWED_X_GUIDANCE: dict[str, type] = {"whitespace_flexible": bool}
#: Keys whose value is a list of alternative schemas the parser keeps open together.
BRANCH_KEYS = ("anyOf", "oneOf")


@dataclass(frozen=True)
class GuidanceLimits:
    max_bytes: int = 32 * 1024
    max_properties: int = 256
    max_depth: int = 32


def guidance_for(response_format: ResponseFormat | None, limits: GuidanceLimits) -> tuple[str, str] | None:
    """The (kind, grammar) onnxruntime-genai takes for this format, or None for plain text; 400 beyond a limit."""
    if response_format is None or response_format.type == "text":
        return None
    schema: dict[str, Any] = {"type": "object"}
    if response_format.type == "json_schema":
        assert response_format.json_schema is not None
        schema = dict(response_format.json_schema.schema_ or schema)
    _check_x_guidance(schema.get("x-guidance"))
    # Compact JSON (no free whitespace between tokens) unless the client says otherwise: small models
    # under a grammar otherwise tend to emit whitespace until max_tokens.
    schema.setdefault("x-guidance", {"whitespace_flexible": False})
    grammar = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
    size = len(grammar.encode("utf-8"))
    if size > limits.max_bytes:  # first: the cheapest check bounds the walk below
        raise _too_big(
            f"The JSON schema is {size} bytes as compact JSON; this server accepts at most {limits.max_bytes}.",
            "schema_too_large",
        )
    depth, choices = _measure(schema)
    if depth > limits.max_depth:
        raise _too_big(
            f"The JSON schema nests {depth} levels deep; this server accepts at most {limits.max_depth}.",
            "schema_too_deep",
        )
    if choices > limits.max_properties:
        raise _too_big(
            f"The JSON schema has {choices} properties and anyOf/oneOf branches; this server accepts at most "
            f"{limits.max_properties} (each is a choice the grammar parser keeps open).",
            "schema_too_complex",
        )
    return ("json_schema", grammar)


def _too_big(message: str, code: str) -> APIError:
    return APIError(400, message, param=SCHEMA_PARAM, code=code)


def _check_x_guidance(options: Any) -> None:
    if options is None:
        return
    param = f"{SCHEMA_PARAM}.x-guidance"
    if not isinstance(options, dict):
        raise APIError(400, "`x-guidance` must be an object.", param=param, code="invalid_value")
    for key, value in options.items():
        wanted = ALLOWED_X_GUIDANCE.get(key)
        if wanted is None:
            allowed = ", ".join(ALLOWED_X_GUIDANCE)
            raise APIError(400, f"`x-guidance.{key}` is not accepted by this server (allowed: {allowed}).",
                           param=param, code="unsupported_parameter")  # fmt: skip
        if not isinstance(value, wanted):
            raise APIError(400, f"`x-guidance.{key}` must be a {wanted.__name__}.", param=param,
                           code="invalid_value")  # fmt: skip


def _measure(schema: dict[str, Any]) -> tuple[int, int]:
    """(JSON nesting depth, properties + anyOf/oneOf branches) of a schema, without recursion."""
    depth = 0
    choices = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                choices += len(properties)
            for key in BRANCH_KEYS:
                branches = node.get(key)
                if isinstance(branches, list):
                    choices += len(branches)
            stack.extend((value, level + 1) for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            stack.extend((value, level + 1) for value in node if isinstance(value, dict | list))
    return depth, choices
