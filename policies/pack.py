"""Importable, side-effect-free entry point of the policy pack.

``PACK_NAME``, ``PACK_VERSION``, ``POLICIES`` (the ``pulumi_policy`` policies), ``RULES`` and
``catalogue()`` (rule metadata). Works as ``import policies.pack`` from the repository root and as
``import pack`` with the pack folder on ``sys.path`` (as the Pulumi CLI runs it).
"""

from __future__ import annotations

if __package__:
    from .registry import (
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
else:  # imported as a top-level module from the pack folder
    import _bootstrap

    _bootstrap.ensure_package()
    from policies.registry import (  # type: ignore[no-redef]
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
