"""One key style in every JSON output: camelCase, as the stack files (``kvCacheDtype``, ``ttftP50Ms``).

Data classes and dicts built in Python keep snake_case names; JSON renderers pass their data through
:func:`camel_keys` on the way out. Keys that are names from elsewhere (policy names, Kubernetes fields, metric
names) are values or already in their own style, and are left alone: only snake_case keys change.
"""

from __future__ import annotations

import re
from typing import Any

_SNAKE = re.compile(r"_([a-z0-9])")


def camel(key: str) -> str:
    """``ttft_p50_ms`` → ``ttftP50Ms``; keys without ``_`` (or starting with one) are kept."""
    if "_" not in key.strip("_") or key.startswith("_") or not key.islower():
        return key
    return _SNAKE.sub(lambda match: match.group(1).upper(), key)


def camel_keys(value: Any) -> Any:
    """``value`` with every dict key camelCased, recursively (lists and tuples too)."""
    if isinstance(value, dict):
        return {camel(key) if isinstance(key, str) else key: camel_keys(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [camel_keys(item) for item in value]
    return value
