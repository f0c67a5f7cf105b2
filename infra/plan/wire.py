"""Property values as the Pulumi engine carries them on the wire, both ways, with the SDK's own markers.

A secret travels as ``{<sig key>: <secret sig>, "value": …}``, an unknown as a fixed sentinel string, and
every number as a double. The markers are the SDK's (``pulumi.runtime.rpc``, private names: the SDK
version is pinned), so the offline engine and the analyzer driver read and write exactly what it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown as OutputUnknown
from pulumi.runtime.rpc import UNKNOWN as UNKNOWN_SENTINEL
from pulumi.runtime.rpc import _special_secret_sig as SECRET_SIG
from pulumi.runtime.rpc import _special_sig_key as SPECIAL_SIG_KEY

from infra.plan.model import UNKNOWN, Secret, Unknown

__all__ = ["SECRET_SIG", "SPECIAL_SIG_KEY", "UNKNOWN_SENTINEL", "from_wire", "to_wire"]


def from_wire(value: Any) -> Any:
    """A property value as sent to the engine → plain data with :class:`Secret` and unknown markers."""
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SECRET_SIG:
            return Secret(from_wire(value.get("value")))
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, OutputUnknown) or value == UNKNOWN_SENTINEL:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        # The wire carries every number as a double; Kubernetes fields here are integers.
        return int(value)
    return value


def to_wire(value: Any) -> Any:
    """A recorded input value as the engine marshals it for an analyzer."""
    if isinstance(value, Secret):
        return {SPECIAL_SIG_KEY: SECRET_SIG, "value": to_wire(value.value)}
    if isinstance(value, Unknown):
        return UNKNOWN_SENTINEL
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
