"""SLM-COST-001 (stack): the stack's estimated monthly cost stays within the environment's budget.

``slm-deploy check`` prices the planned stack with the repository's dated price table (``infra/cost``) and
hands the estimate to the pack as the stack config value ``slm-deploy:costEstimate`` (a stack file cannot
set it: the program refuses unknown keys). The budget is policy config, per level file: ``monthlyBudget``
in the estimate's currency, judged at the autoscalers' max scale unless ``scale`` says ``min``. Without an
estimate (the Pulumi CLI, which does not price) or without a budget the rule has nothing to judge.

The finding is reported on the resource that stands for the stack's spending, so that a waiver can name it
like any other: the AKS cluster the stack creates, or else the first model server's Deployment (by name).
Its subject is the amount: a waiver must state ``maxMonthlyUsd`` and covers an estimate up to that figure
only (``waiver-validity`` refuses a budget waiver without it). While anything is unpriced the figure is a lower
bound and the finding says "at least"; ``cost-unpriced`` refuses the unpriced items themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import stack_config
from ...lib.aks import MANAGED_CLUSTER
from ...lib.finding import Finding
from ...lib.rule import SLM, Rule

_DEPLOYMENT = "kubernetes:apps/v1:Deployment"
#: The types a finding is anchored on: all this rule (and cost-unpriced) reads of the stack's resources.
ANCHOR_TYPES = frozenset({MANAGED_CLUSTER, _DEPLOYMENT})

#: The stack config key ``slm-deploy check`` sets (kept equal to infra.cost.budget.ESTIMATE_KEY).
ESTIMATE_KEY = "costEstimate"


def _money(value: float, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def anchor(args: StackValidationArgs) -> str | None:
    """The URN the finding is reported on: the AKS cluster, else the first Deployment by name, else the stack."""
    for kind in (MANAGED_CLUSTER, _DEPLOYMENT):
        found = sorted((r.name, r.urn) for r in args.resources if r.resource_type == kind)
        if found:
            return found[0][1]
    return None


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    budget = float(config.get("monthlyBudget") or 0)
    estimate = stack_config.value(ESTIMATE_KEY)
    if budget <= 0 or not isinstance(estimate, Mapping):
        return
    scale = str(config.get("scale") or "max")
    currency = str(estimate.get("currency", ""))
    total = float((estimate.get("total") or {}).get(scale, 0))
    if total <= budget:
        return
    unpriced = int(estimate.get("unpriced") or 0)
    partial = f"; {unpriced} item(s) have no price in the table, so the real figure is higher" if unpriced else ""
    bound = "at least " if unpriced else ""
    yield (
        anchor(args),
        Finding(
            f"the estimated monthly cost at {scale} scale is {bound}{_money(total, currency)}, over the budget of "
            f"{_money(budget, currency)} by {bound}{_money(total - budget, currency)} (prices of "
            f"{estimate.get('priceDate', '?')}, region {estimate.get('region') or '?'}{partial}); see "
            "`slm-deploy cost` for the lines",
            amount=total,
        ),
    )


RULE = Rule(
    id="SLM-COST-001",
    name="monthly-budget",
    title="The stack's estimated monthly cost must stay within the environment's budget",
    severity="medium",
    rationale=(
        "GPU node pools cost thousands a month each: a pull request that raises a pool's maxCount or adds a model "
        "can double a bill unnoticed. Pricing the plan before it is applied puts the figure in front of the "
        "reviewer and stops changes that exceed what the environment is allowed to spend."
    ),
    remediation=(
        "Lower the pools' maxCount or the models' replicas (see `slm-deploy cost --stack NAME`), or raise "
        "monthlyBudget in policies/config/<level>.json in a change the budget owners review, or add a waiver."
    ),
    controls={SLM: ("Cost governance: a change cannot exceed the environment's budget unreviewed",)},
    kind="stack",
    resource_types=ANCHOR_TYPES,
    default_level="advisory",
    config={
        "monthlyBudget": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "Most the stack may cost a month, in the price table's currency; 0: no budget.",
        },
        "scale": {
            "type": "string",
            "enum": ["min", "max"],
            "default": "max",
            "description": "Judge the cost at the autoscalers' max (worst case) or min scale.",
        },
    },
    check=check,
    subject="amount",
)
