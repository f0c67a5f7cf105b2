"""Importable, side-effect-free entry point of the policy pack.

``PACK_NAME``, ``PACK_VERSION``, ``POLICIES`` (the ``pulumi_policy`` policies), ``RULES`` and
``catalogue()`` (rule metadata). Works as ``import policies.pack`` from the repository root and as
``import pack`` with the pack folder on ``sys.path`` (as the Pulumi CLI runs it).
"""

from __future__ import annotations

if not __package__:  # imported as a top-level module from the pack folder (as the Pulumi CLI runs it)
    import importlib

    # Only importable in that situation (the pack folder is sys.path[0]), hence by name.
    importlib.import_module("_bootstrap").ensure_package()

# One import either way: the pack folder is always importable as the package `policies` by now.
from policies.registry import (
    ALWAYS_ADVISORY,
    PACK_DESCRIPTION,
    PACK_NAME,
    PACK_VERSION,
    POLICIES,
    RULE_FOLDERS,
    RULES,
    RULES_BY_ID,
    RULES_BY_NAME,
    catalogue,
    reset_state,
)

__all__ = [
    "ALWAYS_ADVISORY",
    "PACK_DESCRIPTION",
    "PACK_NAME",
    "PACK_VERSION",
    "POLICIES",
    "RULES",
    "RULES_BY_ID",
    "RULES_BY_NAME",
    "RULE_FOLDERS",
    "catalogue",
    "reset_state",
]
