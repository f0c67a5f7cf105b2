"""Price an inventory: monthly figures at the autoscalers' min and max, per line, per model and in total.

AKS stacks pay for what they create: every node pool at its bounds, the control-plane tier, load balancers,
public IPs and cache volumes. A model's own figure is the part of that it causes: the GPU nodes its replicas
fill (whole nodes: GPU pools are tainted for GPU pods) or, for CPU pods, their share of a node by requests;
the rest (system and user pools, tier, egress load balancer) is shared. On an existing cluster the stack
pays only for its share of nodes someone else runs, priced when the stack's ``cluster.costBasis`` says
which VM sizes they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.cost.inventory import Inventory, Workload
from infra.cost.table import Price, PriceTable, RegionPrices
from infra.sizing.vm_sizes import UnknownVmSizeError, get_vm_size

Category = Literal["nodes", "cluster", "network", "storage", "share"]


@dataclass(frozen=True)
class ExistingNodes:
    """An existing cluster's nodes as ``cluster.costBasis`` describes them (``None`` fields: unknown)."""

    region: str | None = None
    cpu_vm_size: str | None = None
    #: The VM size each GPU model runs on: its ``gpu.vmSize`` or the basis' ``gpuVmSize``.
    gpu_vm_sizes: Mapping[str, str] = field(default_factory=dict)
    default_storage_class: str | None = None


@dataclass(frozen=True)
class CostLine:
    """One billed item: its quantity at min and max scale times a monthly unit price (``None``: not priced)."""

    category: Category
    item: str
    unit: str
    quantity_min: float
    quantity_max: float
    unit_monthly: float | None
    source: str
    model: str | None = None
    pool: str | None = None

    @property
    def priced(self) -> bool:
        return self.unit_monthly is not None

    @property
    def monthly_min(self) -> float:
        return (self.unit_monthly or 0.0) * self.quantity_min

    @property
    def monthly_max(self) -> float:
        return (self.unit_monthly or 0.0) * self.quantity_max

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "item": self.item,
            "model": self.model,
            "pool": self.pool,
            "unit": self.unit,
            "quantity": {"min": self.quantity_min, "max": self.quantity_max},
            "unitMonthly": None if self.unit_monthly is None else round(self.unit_monthly, 4),
            "monthly": {"min": round(self.monthly_min, 2), "max": round(self.monthly_max, 2)} if self.priced else None,
            "source": self.source,
        }


@dataclass(frozen=True)
class ModelRequests:
    """What one model's pods request at min and max replicas (the share of an existing cluster)."""

    model: str
    replicas: tuple[int, int]
    gpus: tuple[int, int]
    cpu: tuple[float, float]
    memory_gib: tuple[float, float]


@dataclass(frozen=True)
class Estimate:
    stack: str
    mode: Literal["aks", "existing"]
    region: str | None
    currency: str
    price_date: str
    hours_per_month: float
    lines: tuple[CostLine, ...]
    #: Lines counted in the total (on AKS the per-model node lines are an attribution inside the pools').
    total_lines: tuple[CostLine, ...]
    models: tuple[str, ...]
    requests: tuple[ModelRequests, ...]
    not_included: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> tuple[float, float]:
        return (sum(x.monthly_min for x in self.total_lines), sum(x.monthly_max for x in self.total_lines))

    def model_total(self, model: str) -> tuple[float, float]:
        mine = [x for x in self.lines if x.model == model]
        return (sum(x.monthly_min for x in mine), sum(x.monthly_max for x in mine))

    def pool_totals(self) -> dict[str, tuple[float, float]]:
        return {
            x.pool: (x.monthly_min, x.monthly_max)
            for x in self.total_lines
            if x.category == "nodes" and x.pool is not None
        }

    @property
    def unpriced(self) -> list[CostLine]:
        """Items with no price in the table: the total leaves them out, and says so."""
        seen = {(x.item, x.source): x for x in (*self.lines, *self.total_lines) if not x.priced}
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        low, high = self.total
        return {
            "stack": self.stack,
            "mode": self.mode,
            "region": self.region,
            "currency": self.currency,
            "priceDate": self.price_date,
            "hoursPerMonth": self.hours_per_month,
            "total": {"min": round(low, 2), "max": round(high, 2)},
            "models": {
                name: dict(zip(("min", "max"), (round(v, 2) for v in self.model_total(name)), strict=True))
                for name in self.models
            },
            "pools": {
                name: {"min": round(low, 2), "max": round(high, 2)} for name, (low, high) in self.pool_totals().items()
            },
            "requests": [
                {
                    "model": r.model,
                    "replicas": {"min": r.replicas[0], "max": r.replicas[1]},
                    "gpus": {"min": r.gpus[0], "max": r.gpus[1]},
                    "cpu": {"min": r.cpu[0], "max": r.cpu[1]},
                    "memoryGiB": {"min": r.memory_gib[0], "max": r.memory_gib[1]},
                }
                for r in self.requests
            ],
            "lines": [x.to_dict() for x in self.lines],
            "unpriced": [{"category": x.category, "item": x.item, "source": x.source} for x in self.unpriced],
            "notIncluded": list(self.not_included),
            "notes": list(self.notes),
        }


_MISSING_REGION = "no prices for this region in the table"


class _Pricer:
    """Monthly unit prices for one region, each with where it comes from (``None``: not in the table)."""

    def __init__(self, table: PriceTable, region: str | None) -> None:
        self.table = table
        self.prices: RegionPrices | None = table.region(region) if region else None

    def _monthly(self, price: Price | None, hourly: bool = True) -> tuple[float | None, str]:
        if self.prices is None:
            return None, _MISSING_REGION
        if price is None:
            return None, "not in the price table"
        if price.amount is None:
            return None, price.source
        return price.amount * (self.table.hours_per_month if hourly else 1.0), price.source

    def vm(self, size: str) -> tuple[float | None, str]:
        return self._monthly(self.prices.vm(size) if self.prices else None)

    def tier(self, tier: str) -> tuple[float | None, str]:
        return self._monthly(self.prices.aks_tiers.get(tier) if self.prices else None)

    def load_balancer(self) -> tuple[float | None, str]:
        return self._monthly(self.prices.load_balancer if self.prices else None)

    def public_ip(self) -> tuple[float | None, str]:
        return self._monthly(self.prices.public_ip if self.prices else None)

    def storage(self, storage_class: str | None) -> tuple[float | None, str]:
        if storage_class is None:
            return None, "the claim names no storage class and cluster.costBasis.defaultStorageClass is unset"
        found = self.prices.storage_classes.get(storage_class) if self.prices else None
        return self._monthly(found, hourly=False)


def _gpus_per_node(vm_size: str) -> int:
    try:
        return get_vm_size(vm_size).gpu_count
    except UnknownVmSizeError:
        return 0


def _node_share(workload: Workload, vm_size: str, table: PriceTable, replicas: int) -> float | None:
    """Nodes a workload occupies: whole GPU nodes for GPU pods, the requested fraction of a CPU node otherwise."""
    if workload.gpus:
        per_node = _gpus_per_node(vm_size)
        return math.ceil(replicas * workload.gpus / per_node) if per_node else None
    shape = table.cpu_shape(vm_size)
    if shape is None:
        return None
    return replicas * max(workload.cpu / shape.vcpus, workload.memory_gib / shape.memory_gib)


def _requests(workload: Workload) -> ModelRequests:
    low, high = workload.min_replicas, workload.max_replicas
    return ModelRequests(
        model=workload.model,
        replicas=(low, high),
        gpus=(low * workload.gpus, high * workload.gpus),
        cpu=(round(low * workload.cpu, 3), round(high * workload.cpu, 3)),
        memory_gib=(round(low * workload.memory_gib, 3), round(high * workload.memory_gib, 3)),
    )


def estimate(stack: str, inventory: Inventory, table: PriceTable, existing: ExistingNodes | None = None) -> Estimate:
    """The monthly estimate of ``inventory``: an AKS stack when it declares a cluster, else an existing one."""
    aks = inventory.aks_tier is not None
    region = inventory.region if aks else (existing.region if existing else None)
    pricer = _Pricer(table, region)
    lines: list[CostLine] = []
    shared: list[CostLine] = []
    notes: list[str] = []
    pools = {pool.name: pool for pool in inventory.pools}
    for workload in inventory.workloads:
        if aks:
            pool = (
                pools.get(workload.pool)
                if workload.pool
                else next((p for p in inventory.pools if p.mode == "User" and not _gpus_per_node(p.vm_size)), None)
            )
            vm_size = pool.vm_size if pool else None
            pool_name = pool.name if pool else None
        else:
            vm_size = existing.gpu_vm_sizes.get(workload.model) if existing and workload.gpus else None
            if not workload.gpus and existing is not None:
                vm_size = existing.cpu_vm_size
            pool_name = workload.pool
        if vm_size is None:
            lines.append(
                CostLine(
                    "share",
                    "nodes (VM size unknown)",
                    "node",
                    0,
                    0,
                    None,
                    "cluster.costBasis names no VM size for this model",
                    model=workload.model,
                    pool=pool_name,
                )
            )
            continue
        low = _node_share(workload, vm_size, table, workload.min_replicas)
        high = _node_share(workload, vm_size, table, workload.max_replicas)
        unit, source = pricer.vm(vm_size)
        if low is None or high is None:
            unit, source = None, f"{vm_size}: shape unknown (not a catalogued GPU size or a cpuVmSizes entry)"
        lines.append(
            CostLine(
                "share",
                vm_size,
                "node",
                round(low or 0, 4),
                round(high or 0, 4),
                unit,
                source,
                model=workload.model,
                pool=pool_name,
            )
        )
    for volume in inventory.volumes:
        storage_class = volume.storage_class or (existing.default_storage_class if existing and not aks else None)
        if storage_class is None and aks:
            storage_class = "managed-csi"  # AKS's default storage class
        unit, source = pricer.storage(storage_class)
        line = CostLine(
            "storage",
            f"{volume.name} ({storage_class or 'default class'})",
            "GiB",
            volume.size_gib,
            volume.size_gib,
            unit,
            source,
            model=volume.model,
        )
        lines.append(line)
        shared.append(line)
    for balancer in inventory.load_balancers:
        unit, source = pricer.load_balancer()
        item = f"load balancer {balancer.name} ({'public' if balancer.public else 'internal'})"
        shared.append(CostLine("network", item, "load balancer", 1, 1, unit, source))
        if balancer.public:
            unit, source = pricer.public_ip()
            shared.append(CostLine("network", f"public IP of {balancer.name}", "IP", 1, 1, unit, source))
    if aks:
        unit, source = pricer.tier(inventory.aks_tier or "Free")
        shared.append(CostLine("cluster", f"AKS {inventory.aks_tier} tier", "cluster", 1, 1, unit, source))
        for pool in inventory.pools:
            unit, source = pricer.vm(pool.vm_size)
            shared.append(
                CostLine("nodes", pool.vm_size, "node", pool.min_count, pool.max_count, unit, source, pool=pool.name)
            )
        total_lines = tuple(shared)
    else:
        if existing is None:
            notes.append("existing cluster without cluster.costBasis: only the requests are shown")
        total_lines = tuple(x for x in lines if x.category == "share") + tuple(shared)
    all_lines = tuple(lines) + tuple(x for x in shared if x.category != "storage")
    return Estimate(
        stack=stack,
        mode="aks" if aks else "existing",
        region=region,
        currency=table.currency,
        price_date=table.retrieved.isoformat(),
        hours_per_month=table.hours_per_month,
        lines=all_lines,
        total_lines=total_lines,
        models=tuple(w.model for w in inventory.workloads),
        requests=tuple(_requests(w) for w in inventory.workloads),
        not_included=table.not_included,
        notes=tuple(notes),
    )
