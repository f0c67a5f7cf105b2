"""The estimate as the policy pack's ``monthly-budget`` rule reads it (stack config ``slm-deploy:costEstimate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.cost.estimate import Estimate

if TYPE_CHECKING:
    from infra.plan.stack import StackPlan

#: Kept equal to ESTIMATE_KEY in policies/rules/monthly_budget (a test checks it).
ESTIMATE_KEY = "costEstimate"


def estimate_value(result: Estimate) -> dict[str, Any]:
    """What the pack reads: the totals (a lower bound unless ``complete``) and what is not priced, item by item.

    ``complete``, ``regionInTable`` and ``unpricedItems`` (``category``, ``item``, ``reason``, ``model``,
    ``pool``) come from :meth:`infra.cost.estimate.Estimate.unpriced_items`: a rule that refuses an unpriced
    prod stack reads them (``unpriced`` stays the count).
    """
    low, high = result.total
    return {
        "currency": result.currency,
        "total": {"min": round(low, 2), "max": round(high, 2)},
        "priceDate": result.price_date,
        "region": result.region,
        "regionInTable": result.region_in_table,
        "complete": result.complete,
        "unpriced": len(result.unpriced),
        "unpricedItems": [item.to_dict() for item in result.unpriced_items()],
    }


def budget_stack_config(plan: StackPlan) -> dict[str, Any]:
    """What ``check`` adds to the stack config it hands the pack: the priced plan."""
    from infra.cost.stack import estimate_plan

    return {ESTIMATE_KEY: estimate_value(estimate_plan(plan))}
