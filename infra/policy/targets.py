"""The target of a planned stack (its cluster), as level files bind it: see :mod:`policies.lib.targets`.

Kept apart from :mod:`infra.policy.pack_config` so that ``render`` can write the target without importing the
pack's config (which prices the plan for the budget rule).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from policies.lib.targets import Target, stack_target

if TYPE_CHECKING:
    from infra.plan.stack import StackPlan


def plan_target(plan: StackPlan) -> Target | None:
    """The stack's target, with the subscription its stack file sets for the Azure provider (if any)."""
    cluster = plan.config.cluster.model_dump(mode="json", by_alias=True)
    return stack_target(cluster, stack_subscription(plan.stack_file))


def stack_subscription(stack_file: Path) -> str | None:
    """``azure-native:subscriptionId`` of a stack file, when it sets one in plain text."""
    try:
        return _subscription(stack_file.resolve(), stack_file.stat().st_mtime_ns)
    except OSError:
        return None


@lru_cache(maxsize=32)
def _subscription(stack_file: Path, _mtime: int) -> str | None:
    import yaml

    from infra.yamlio import load_yaml

    try:
        document = load_yaml(stack_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    config = document.get("config") if isinstance(document, dict) else None
    value = config.get("azure-native:subscriptionId") if isinstance(config, dict) else None
    return value if isinstance(value, str) and value.strip() else None
