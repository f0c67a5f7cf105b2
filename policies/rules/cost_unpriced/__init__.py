"""SLM-COST-002 (stack): the cost estimate fails closed: what the price table cannot price is a finding.

A pool of a VM size the table lacks, or any pool in a region the table lacks, used to count as zero: a 40-node
H100 pool read "±0" and the budget passed. ``slm-deploy check`` hands the pack the estimate with the items it
could not price (``costEstimate.unpricedItems``, from :meth:`infra.cost.estimate.Estimate.unpriced_items`); this
rule reports each one, naming the item and the region, in the categories the level lists (``categories``).
prod fails closed on what an AKS stack creates (``nodes``, ``cluster``, ``network``: a pool of a size or in a
region the table lacks); ``storage`` (no Azure Files premium figures in the table yet) and ``share`` (an
existing cluster's share, unpriced while ``cluster.costBasis`` names no VM size) are left to the level to add;
a stack that names no region at all (an existing cluster without ``cluster.costBasis``) is judged only where
the level lists ``share``.
Mandatory in prod, advisory where the level says so. A waiver names the item as its subject.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from ...lib import stack_config
from ...lib.finding import Finding
from ...lib.k8s import is_map, items
from ...lib.rule import SLM, Rule
from ..monthly_budget import ANCHOR_TYPES, ESTIMATE_KEY, anchor

CATEGORIES = ["nodes", "share", "cluster", "network", "storage"]


def check(args: StackValidationArgs, config: Mapping[str, Any]) -> Iterator[tuple[str | None, str]]:
    estimate = stack_config.value(ESTIMATE_KEY)
    if not is_map(estimate):
        args.not_applicable("no cost estimate (the Pulumi CLI does not price the plan)")
    judged = {str(c) for c in config.get("categories") or CATEGORIES}
    if not estimate.get("region") and "share" not in judged:
        args.not_applicable("the stack names no region (an existing cluster without cluster.costBasis)")
    region = estimate.get("region") or "?"
    where = f"region {region}" + ("" if estimate.get("regionInTable", True) else ", which the price table lacks")
    for entry in items(estimate.get("unpricedItems")):
        if not is_map(entry) or str(entry.get("category")) not in judged:
            continue
        item = str(entry.get("item"))
        pool = f" (pool {entry['pool']})" if entry.get("pool") else ""
        yield (
            anchor(args),
            Finding(
                f"{entry.get('category')} {item}{pool} has no price for {where}: {entry.get('reason')}; the estimate "
                "and the budget check are a lower bound until it is priced (add it to the price table, or an "
                "organisation price file)",
                subject=item,
            ),
        )


RULE = Rule(
    id="SLM-COST-002",
    name="cost-unpriced",
    title="Every billed item of the stack has a price (the cost estimate fails closed)",
    severity="medium",
    rationale=(
        "An item the price table cannot price counted as nothing: the budget rule then passed a pool of any size. "
        "A reviewer must see, and in prod refuse, what the estimate cannot see."
    ),
    remediation=(
        "Use a VM size and region the price table knows (see `slm-deploy cost`), add the price to the table or an "
        "organisation price file, or waive the item (naming it in subjects) with a reason."
    ),
    controls={SLM: ("Cost governance: a change cannot exceed the environment's budget unreviewed",)},
    kind="stack",
    resource_types=ANCHOR_TYPES,
    config={
        "categories": {
            "type": "array",
            "items": {"type": "string", "enum": CATEGORIES},
            "default": CATEGORIES,
            "description": "Cost line categories whose unpriced items are findings at this level.",
        }
    },
    check=check,
    subject="unpriced item",
)
