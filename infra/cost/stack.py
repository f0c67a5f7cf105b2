"""The estimate of a planned stack: its rendered objects, priced, with the stack's cost basis."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from infra.config.cluster import ExistingCluster
from infra.cost.estimate import Estimate, ExistingNodes, estimate
from infra.cost.inventory import read_inventory
from infra.cost.table import price_table

if TYPE_CHECKING:
    from infra.config.stack import StackConfig
    from infra.plan.stack import StackPlan


def existing_nodes(config: StackConfig) -> ExistingNodes | None:
    """``cluster.costBasis`` of an existing-cluster stack, with each GPU model's VM size resolved."""
    cluster = config.cluster
    if not isinstance(cluster, ExistingCluster) or cluster.cost_basis is None:
        return None
    basis = cluster.cost_basis
    sizes = {
        model.name: size
        for model in config.models
        if model.gpu.count and (size := model.gpu.vm_size or basis.gpu_vm_size) is not None
    }
    return ExistingNodes(
        region=basis.region,
        cpu_vm_size=basis.cpu_vm_size,
        gpu_vm_sizes=sizes,
        default_storage_class=basis.default_storage_class,
    )


def plan_documents(plan: StackPlan) -> list[dict[str, Any]]:
    from infra.plan.render import stack_manifests

    return [item.document for item in stack_manifests(plan)]


def estimate_documents(stack: str, documents: Iterable[Mapping[str, Any]], config: StackConfig) -> Estimate:
    """Price rendered objects with the stack's cost basis and GPU node label."""
    inventory = read_inventory(documents, config.gpu_node_label)
    return estimate(stack, inventory, price_table(), existing_nodes(config))


def estimate_plan(plan: StackPlan) -> Estimate:
    return estimate_documents(plan.stack, plan_documents(plan), plan.config)
