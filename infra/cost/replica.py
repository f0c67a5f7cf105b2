"""USD an hour for the nodes one replica of a model occupies, from the stack config and the public price table.

The Grafana cost rules (infra/monitoring/cost_rules.py) multiply it by the replicas available and divide by the
tokens the engine counted. A GPU replica occupies ``gpu.count / GPUs per node`` of a node (the estimate counts
whole nodes per fleet, so it is equal when replicas fill nodes), divided by the slices per GPU on a shared pool;
a CPU replica the share of its node it requests.
An organisation price file is not read here: the stack config does not know the project root (docs/cost.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.config.cluster import AksCluster
from infra.config.quantity import gibibytes, parse_quantity
from infra.cost.table import PriceTable, price_table
from infra.sizing.vm_sizes import UnknownVmSizeError, get_vm_size

if TYPE_CHECKING:
    from infra.config.model import ModelConfig
    from infra.config.stack import StackConfig


def _where(config: StackConfig, model: ModelConfig) -> tuple[str | None, str | None, bool, int]:
    """(region, VM size, spot, slices per GPU) of the nodes the model's replicas run on."""
    cluster = config.cluster
    if isinstance(cluster, AksCluster):
        if model.gpu.count:
            pool = cluster.pool(model.gpu.pool)
            if pool is None:
                return cluster.location.lower(), None, False, 1
            return cluster.location.lower(), pool.vm_size, pool.spot, pool.sharing.slices_per_gpu(pool.size)
        user = cluster.user_pool
        return cluster.location.lower(), user.vm_size if user else cluster.system_pool.vm_size, False, 1
    basis = cluster.cost_basis
    if basis is None:
        return None, None, False, 1
    size = (model.gpu.vm_size or basis.gpu_vm_size) if model.gpu.count else basis.cpu_vm_size
    return basis.region, size, False, 1


def replica_hourly_cost(config: StackConfig, model: ModelConfig, table: PriceTable | None = None) -> float | None:
    """``None`` when the region, the size or its (spot) figure is not in the table."""
    table = table or price_table()
    region, size, spot, slices = _where(config, model)
    prices = table.region(region) if region else None
    price = prices.vm(size) if prices and size else None
    hourly = (price.spot if spot else price.amount) if price else None
    if hourly is None or size is None:
        return None
    if model.gpu.count:
        try:
            per_node = get_vm_size(size).gpu_count
        except UnknownVmSizeError:
            return None
        return hourly * model.gpu.count / (per_node * slices)
    shape = table.cpu_shape(size)
    if shape is None:
        return None
    requests = model.resources.requests
    cpu = float(parse_quantity(str(requests.cpu)))
    memory = gibibytes(str(requests.memory))
    return hourly * max(cpu / shape.vcpus, memory / shape.memory_gib)
