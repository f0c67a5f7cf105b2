"""The stack's own configuration (namespace ``slm-deploy``), as a policy reads it.

The Pulumi CLI hands a policy pack the stack's config (environment ``PULUMI_CONFIG``, which
``pulumi_policy`` copies into ``pulumi.runtime`` before each call); the offline driver sets the same
keys with ``pulumi.runtime.set_config``. Secret values are not handed over offline.
"""

from __future__ import annotations

import json
from typing import Any

CONFIG_NAMESPACE = "slm-deploy"


def raw(key: str) -> Any:
    """The value of ``slm-deploy:<key>`` as the engine stores it (a string, JSON for structured values)."""
    import pulumi.runtime

    return pulumi.runtime.get_config(f"{CONFIG_NAMESPACE}:{key}")


def value(key: str, default: Any = None) -> Any:
    """``slm-deploy:<key>``, parsed from JSON when it is JSON; ``default`` when unset."""
    found = raw(key)
    if found is None or found == "":
        return default
    if isinstance(found, str):
        try:
            return json.loads(found)
        except json.JSONDecodeError:
            return found
    return found
