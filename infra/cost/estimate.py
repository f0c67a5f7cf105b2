"""Price an inventory: monthly figures at the autoscalers' min and max, per line, per model and in total.

AKS stacks pay for what they create: every node pool at its bounds (spot pools at the spot figure; a Karpenter
NodePool of node auto-provisioning from no node to the nodes its GPU ``limits`` allow), the
control-plane tier, load balancers, public IPs and cache volumes. A model's own figure is the part of that it
causes: the GPU nodes its replicas fill (whole nodes: GPU pools are tainted for GPU pods; on a pool that shares
its GPUs, its slices' share of a node: ``replicas x slices / (GPUs per node x slices per GPU)``) or, for CPU pods,
their share of a node by requests; the rest (system and user pools, tier, egress load balancer) is shared. On an
existing cluster the stack pays only for its share of nodes someone else runs, priced when the stack's
``cluster.costBasis`` says which VM sizes they are.

A figure the table lacks is never guessed: its line is "not priced", the totals leave it out and say they are a
lower bound (``Estimate.complete`` is false), and ``Estimate.unpriced_items()`` lists what is missing and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.cost.inventory import Inventory, Pool, Workload
from infra.cost.table import Origin, Price, PriceTable, RegionPrices
from infra.cost.tokens import ReplicaThroughput, TokenCost, token_cost
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
    origin: Origin = "public"
    spot: bool = False

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
            "priceOrigin": self.origin,
            "spot": self.spot,
        }


@dataclass(frozen=True)
class UnpricedItem:
    """Something billed that has no figure: what it is and why (the stable "what is unpriced" record)."""

    category: Category
    item: str
    reason: str
    model: str | None = None
    pool: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "item": self.item,
            "reason": self.reason,
            "model": self.model,
            "pool": self.pool,
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
    token_costs: tuple[TokenCost, ...] = ()
    #: Whether the table has the region at all (``False``: nothing there is priced).
    region_in_table: bool = True
    #: The sources the priced lines use, by id: title, repository, path, commit, date, unit.
    sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    organisation_file: str | None = None

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
        """Lines with no price in the table: the total leaves them out, and says so."""
        seen = {(x.item, x.source): x for x in (*self.lines, *self.total_lines) if not x.priced}
        return list(seen.values())

    @property
    def complete(self) -> bool:
        """Every billed item has a figure: the totals are the estimate, not a lower bound of it."""
        return not self.unpriced

    def unpriced_items(self) -> tuple[UnpricedItem, ...]:
        """What has no figure and why: the API the budget rule and the prod price-coverage check read."""
        return tuple(UnpricedItem(x.category, x.item, x.source, x.model, x.pool) for x in self.unpriced)

    def token_cost(self, model: str) -> TokenCost | None:
        return next((cost for cost in self.token_costs if cost.model == model), None)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.total
        return {
            "stack": self.stack,
            "mode": self.mode,
            "region": self.region,
            "regionInTable": self.region_in_table,
            "currency": self.currency,
            "priceDate": self.price_date,
            "hoursPerMonth": self.hours_per_month,
            "complete": self.complete,
            "totalIsLowerBound": not self.complete,
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
            "tokenCosts": [cost.to_dict() for cost in self.token_costs],
            "lines": [x.to_dict() for x in self.lines],
            "unpriced": [item.to_dict() for item in self.unpriced_items()],
            "sources": {name: dict(spec) for name, spec in self.sources.items()},
            "organisationPriceFile": self.organisation_file,
            "notIncluded": list(self.not_included),
            "notes": list(self.notes),
        }


def missing_region_reason(region: str | None) -> str:
    return f"region {region} is not in the price table" if region else "the stack names no region"


class _Pricer:
    """Monthly unit prices for one region, each with where it comes from (``None``: not in the table)."""

    def __init__(self, table: PriceTable, region: str | None) -> None:
        self.table = table
        self.region = region
        self.prices: RegionPrices | None = table.region(region) if region else None
        self.used: set[str] = set()

    def _monthly(
        self, price: Price | None, what: str, hourly: bool = True, spot: bool = False
    ) -> tuple[float | None, str, Origin]:
        if self.prices is None:
            return None, missing_region_reason(self.region), "public"
        if price is None:
            return None, f"{what}: not in the price table for {self.region}", "public"
        amount = price.spot if spot else price.amount
        if amount is None:
            if spot and price.amount is not None:
                ceiling = price.amount * self.table.hours_per_month
                return (
                    None,
                    f"{what} (spot): no spot figure for {self.region}; a spot VM with maxPrice -1 costs at most the "
                    f"on-demand {self.table.currency} {ceiling:,.2f} a month",
                    price.origin,
                )
            return None, f"{what}: no source has a figure for {self.region}", price.origin
        if price.origin == "public":
            self.used.add(price.source)
        return amount * (self.table.hours_per_month if hourly else 1.0), self.table.describe(price), price.origin

    def vm(self, size: str, spot: bool = False) -> tuple[float | None, str, Origin]:
        return self._monthly(self.prices.vm(size) if self.prices else None, size, spot=spot)

    def vm_hourly(self, size: str, spot: bool = False) -> float | None:
        monthly, _, _ = self.vm(size, spot)
        return None if monthly is None else monthly / self.table.hours_per_month

    def tier(self, tier: str) -> tuple[float | None, str, Origin]:
        return self._monthly(self.prices.aks_tiers.get(tier) if self.prices else None, f"AKS {tier} tier")

    def load_balancer(self) -> tuple[float | None, str, Origin]:
        return self._monthly(self.prices.load_balancer if self.prices else None, "Standard load balancer")

    def public_ip(self) -> tuple[float | None, str, Origin]:
        return self._monthly(self.prices.public_ip if self.prices else None, "Standard public IP")

    def storage(self, storage_class: str | None) -> tuple[float | None, str, Origin, float]:
        """The monthly price per GiB, its source, origin and the least GiB billed (0 when none)."""
        if storage_class is None:
            reason = "the claim names no storage class and cluster.costBasis.defaultStorageClass is unset"
            return None, reason, "public", 0.0
        found = self.prices.storage_classes.get(storage_class) if self.prices else None
        amount, source, origin = self._monthly(found, f"storage class {storage_class}", hourly=False)
        return amount, source, origin, (found.minimum or 0.0) if found else 0.0

    def sources(self) -> dict[str, dict[str, Any]]:
        return {name: self.table.sources[name].to_dict() for name in sorted(self.used) if name in self.table.sources}


def _gpus_per_node(vm_size: str) -> int:
    try:
        return get_vm_size(vm_size).gpu_count
    except UnknownVmSizeError:
        return 0


def _node_share(
    workload: Workload, vm_size: str, table: PriceTable, replicas: int, slices_per_gpu: int = 1
) -> float | None:
    """Nodes a workload occupies: whole GPU nodes for GPU pods, its slices' share of the nodes on a pool that
    shares its GPUs (other models fill the rest), the requested fraction of a CPU node otherwise."""
    if workload.gpus:
        per_node = _gpus_per_node(vm_size)
        if not per_node:
            return None
        if slices_per_gpu > 1:
            return replicas * workload.gpus / (per_node * slices_per_gpu)
        return math.ceil(replicas * workload.gpus / per_node)
    shape = table.cpu_shape(vm_size)
    if shape is None:
        return None
    return replicas * max(workload.cpu / shape.vcpus, workload.memory_gib / shape.memory_gib)


def _on_demand_nodes(pool: Pool, workloads: tuple[Workload, ...]) -> int:
    """Nodes a Karpenter NodePool holds at min scale: those its models' minimum replicas fill (it keeps no idle one)."""
    per_node = _gpus_per_node(pool.vm_size) * pool.slices_per_gpu
    slices = sum(w.min_replicas * w.gpus for w in workloads if w.pool == pool.name)
    return math.ceil(slices / per_node) if per_node else 0


def _requests(workload: Workload) -> ModelRequests:
    low, high = workload.min_replicas, workload.max_replicas
    return ModelRequests(
        model=workload.model,
        replicas=(low, high),
        gpus=(low * workload.gpus, high * workload.gpus),
        cpu=(round(low * workload.cpu, 3), round(high * workload.cpu, 3)),
        memory_gib=(round(low * workload.memory_gib, 3), round(high * workload.memory_gib, 3)),
    )


def _hourly_for(
    workload: Workload, vm_size: str | None, spot: bool, pricer: _Pricer, slices_per_gpu: int = 1
) -> Callable[[int], float | None]:
    """USD an hour for the nodes ``n`` replicas of ``workload`` occupy (``None``: not priced)."""

    def hourly(replicas: int) -> float | None:
        if vm_size is None:
            return None
        nodes = _node_share(workload, vm_size, pricer.table, replicas, slices_per_gpu)
        price = pricer.vm_hourly(vm_size, spot)
        return None if nodes is None or price is None else nodes * price

    return hourly


def estimate(
    stack: str,
    inventory: Inventory,
    table: PriceTable,
    existing: ExistingNodes | None = None,
    throughputs: Mapping[str, ReplicaThroughput] | None = None,
) -> Estimate:
    """The monthly estimate of ``inventory``: an AKS stack when it declares a cluster, else an existing one."""
    aks = inventory.aks_tier is not None
    region = inventory.region if aks else (existing.region if existing else None)
    pricer = _Pricer(table, region)
    lines: list[CostLine] = []
    shared: list[CostLine] = []
    notes: list[str] = []
    token_costs: list[TokenCost] = []
    pools = {pool.name: pool for pool in inventory.pools}
    for workload in inventory.workloads:
        pool: Pool | None = None
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
        spot = bool(pool and pool.spot)
        slices = pool.slices_per_gpu if pool else 1
        # One figure per model: a canary rollout's revisions share the model's resources and GPU (docs/canary.md).
        if throughputs and workload.model in throughputs and all(c.model != workload.model for c in token_costs):
            token_costs.append(
                token_cost(
                    throughputs[workload.model],
                    _hourly_for(workload, vm_size, spot, pricer, slices),
                    (workload.min_replicas, workload.max_replicas),
                )
            )
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
        low = _node_share(workload, vm_size, table, workload.min_replicas, slices)
        high = _node_share(workload, vm_size, table, workload.max_replicas, slices)
        unit, source, origin = pricer.vm(vm_size, spot)
        if low is None or high is None:
            unit, source = None, f"{vm_size}: shape unknown (not a catalogued GPU or CPU size)"
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
                origin=origin,
                spot=spot,
            )
        )
    for volume in inventory.volumes:
        storage_class = volume.storage_class or (existing.default_storage_class if existing and not aks else None)
        if storage_class is None and aks:
            storage_class = "managed-csi"  # AKS's default storage class
        unit, source, origin, minimum = pricer.storage(storage_class)
        billed = max(volume.size_gib, minimum)
        item = f"{volume.name} ({storage_class or 'default class'})"
        if billed > volume.size_gib:
            item += f", {volume.size_gib:g} GiB asked, {billed:g} GiB provisioned"
        line = CostLine("storage", item, "GiB", billed, billed, unit, source, model=volume.model, origin=origin)
        lines.append(line)
        shared.append(line)
    for balancer in inventory.load_balancers:
        unit, source, origin = pricer.load_balancer()
        item = f"load balancer {balancer.name} ({'public' if balancer.public else 'internal'})"
        shared.append(CostLine("network", item, "load balancer", 1, 1, unit, source, origin=origin))
        if balancer.public:
            unit, source, origin = pricer.public_ip()
            shared.append(CostLine("network", f"public IP of {balancer.name}", "IP", 1, 1, unit, source, origin=origin))
    if aks:
        unit, source, origin = pricer.tier(inventory.aks_tier or "Free")
        shared.append(
            CostLine("cluster", f"AKS {inventory.aks_tier} tier", "cluster", 1, 1, unit, source, origin=origin)
        )
        for pool in inventory.pools:
            low = _on_demand_nodes(pool, inventory.workloads) if pool.on_demand else pool.min_count
            unit, source, origin = pricer.vm(pool.vm_size, pool.spot)
            item = f"{pool.vm_size} (spot)" if pool.spot else pool.vm_size
            if pool.max_count is None:
                # A Karpenter NodePool without limits: no maximum exists to price.
                unit, source = None, f"NodePool {pool.name} has no limits: Karpenter may add nodes without bound"
            shared.append(
                CostLine(
                    "nodes",
                    item,
                    "node",
                    low,
                    pool.max_count or 0,
                    unit,
                    source,
                    pool=pool.name,
                    origin=origin,
                    spot=pool.spot,
                )
            )
        total_lines = tuple(shared)
    else:
        if existing is None:
            notes.append("existing cluster without cluster.costBasis: only the requests are shown")
        total_lines = tuple(x for x in lines if x.category == "share") + tuple(shared)
    if table.organisation_file:
        notes.append(f"organisation prices from {table.organisation_file} fill or override the public table")
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
        # Once each: the revisions of a canary rollout are two workloads of one model (docs/canary.md).
        models=tuple(dict.fromkeys(w.model for w in inventory.workloads)),
        requests=tuple(_requests(w) for w in inventory.workloads),
        not_included=table.not_included,
        notes=tuple(notes),
        token_costs=tuple(token_costs),
        region_in_table=pricer.prices is not None,
        sources=pricer.sources(),
        organisation_file=table.organisation_file,
    )
