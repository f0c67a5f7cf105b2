"""Whether the price table can price a stack: its region and the VM sizes and tier it names.

``validate`` (through :meth:`infra.config.stack.StackConfig.warnings`) warns for each gap, at the key that names
it: a cost estimate would leave the item out and call its total a lower bound. The prod refusal of an unpriced
stack is the policy pack's (it reads ``costEstimate.complete`` and ``costEstimate.unpricedItems``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.config.base import KeyPath
from infra.config.cluster import AksCluster
from infra.cost.table import ORG_PRICES_FILE, PRICES_FILE, PriceTable, price_table

if TYPE_CHECKING:
    from infra.config.stack import StackConfig

_FILL = f"add the figure to {ORG_PRICES_FILE.as_posix()} or refresh infra/cost/{PRICES_FILE} (docs/cost.md)"


def _size_gap(table: PriceTable, region: str, size: str, spot: bool = False) -> str | None:
    prices = table.region(region)
    price = prices.vm(size) if prices else None
    if price is None or price.amount is None:
        return f"the price table has no figure for {size} in {region}: `slm-deploy cost` leaves it out; {_FILL}"
    if spot and price.spot is None:
        return (
            f"the price table has no spot figure for {size} in {region}: the pool is left out of the estimate "
            f"(on-demand {price.amount:g} USD/h is the most it costs); {_FILL}"
        )
    return None


def _region_gap(table: PriceTable, region: str) -> str | None:
    if table.region(region) is not None:
        return None
    known = ", ".join(sorted(table.regions))
    return f"region '{region}' is not in the price table ({known}): nothing there is priced; {_FILL}"


def price_coverage(config: StackConfig, table: PriceTable | None = None) -> list[tuple[KeyPath, str]]:
    """(key path, message) for each region or VM size of the stack the table cannot price."""
    table = table or price_table()
    found: list[tuple[KeyPath, str]] = []
    cluster = config.cluster
    if isinstance(cluster, AksCluster):
        region = cluster.location.lower()
        gap = _region_gap(table, region)
        if gap:
            return [(("cluster", "location"), gap)]
        sizes: list[tuple[KeyPath, str, bool]] = [
            (("cluster", "systemPool", "vmSize"), cluster.system_pool.vm_size, False)
        ]
        if cluster.user_pool is not None:
            sizes.append((("cluster", "userPool", "vmSize"), cluster.user_pool.vm_size, False))
        sizes += [
            (("cluster", "gpuPools", index, "spot" if pool.spot else "vmSize"), pool.vm_size, pool.spot)
            for index, pool in enumerate(cluster.gpu_pools)
        ]
        for path, size, spot in sizes:
            message = _size_gap(table, region, size, spot)
            if message:
                found.append((path, message))
        prices = table.region(region)
        tier = prices.aks_tiers.get(cluster.sku_tier) if prices else None
        if tier is None or tier.amount is None:
            found.append(
                (
                    ("cluster", "skuTier"),
                    f"the price table has no figure for the AKS {cluster.sku_tier} tier in {region}; {_FILL}",
                )
            )
        return found
    basis = cluster.cost_basis
    if basis is None:
        return found
    gap = _region_gap(table, basis.region)
    if gap:
        return [(("cluster", "costBasis", "region"), gap)]
    named: list[tuple[KeyPath, str | None]] = [
        (("cluster", "costBasis", "cpuVmSize"), basis.cpu_vm_size),
        (("cluster", "costBasis", "gpuVmSize"), basis.gpu_vm_size),
    ]
    named += [(("models", index, "gpu", "vmSize"), model.gpu.vm_size) for index, model in enumerate(config.models)]
    for path, named_size in named:
        message = _size_gap(table, basis.region, named_size) if named_size else None
        if message:
            found.append((path, message))
    return found
