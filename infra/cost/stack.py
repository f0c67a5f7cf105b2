"""The estimate of a planned stack: its rendered objects, priced, with the stack's cost basis and throughput."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config.cluster import ExistingCluster
from infra.cost.estimate import Estimate, ExistingNodes, estimate
from infra.cost.inventory import read_inventory
from infra.cost.table import table_for
from infra.cost.tokens import ReplicaThroughput, bench_tokens_per_second

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


def throughputs(config: StackConfig, root: Path | None) -> dict[str, ReplicaThroughput]:
    """Each model's per-replica tokens/s: declared, read from its bench file, or unknown (with the reason)."""
    found: dict[str, ReplicaThroughput] = {}
    for index, model in enumerate(config.models):
        spec = model.throughput
        key = f"models[{index}].throughput"
        if spec is None:
            found[model.name] = ReplicaThroughput(model.name, None, f"{key} is unset: no tokens/s to divide by")
            continue
        expected = spec.expected_tokens_per_second
        if spec.tokens_per_second is not None:
            found[model.name] = ReplicaThroughput(
                model.name, spec.tokens_per_second, f"{key}.tokensPerSecond", expected
            )
            continue
        name = spec.bench_results or ""
        path = Path(name) if root is None else root / name
        try:
            measured = bench_tokens_per_second(path)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            found[model.name] = ReplicaThroughput(model.name, None, f"{key}.benchResults {name}: {reason}", expected)
            continue
        per_replica = measured / spec.bench_replicas
        source = f"{key}.benchResults {name} ({measured:g} tokens/s over {spec.bench_replicas} replica(s))"
        found[model.name] = ReplicaThroughput(model.name, per_replica, source, expected)
    return found


def plan_root(plan: StackPlan) -> Path:
    """The project root of a planned stack (its stack file is ``<root>/stacks/Pulumi.<stack>.yaml``)."""
    return plan.stack_file.resolve().parent.parent


def plan_documents(plan: StackPlan) -> list[dict[str, Any]]:
    from infra.plan.render import stack_manifests

    return [item.document for item in stack_manifests(plan)]


def estimate_documents(
    stack: str, documents: Iterable[Mapping[str, Any]], config: StackConfig, root: Path | None = None
) -> Estimate:
    """Price rendered objects with the stack's cost basis, GPU node label, throughput and (under ``root``) the
    organisation's price file."""
    inventory = read_inventory(documents, config.gpu_node_label)
    return estimate(stack, inventory, table_for(root), existing_nodes(config), throughputs(config, root))


def estimate_plan(plan: StackPlan, documents: Iterable[Mapping[str, Any]] | None = None) -> Estimate:
    """The estimate of ``plan`` (or of ``documents`` priced as ``plan``'s stack: a diff's base render)."""
    rendered = plan_documents(plan) if documents is None else documents
    return estimate_documents(plan.stack, rendered, plan.config, plan_root(plan))
