"""The price table (``prices.yaml``, package data): dated list prices per region, each with its source."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

PRICES_FILE = "prices.yaml"


class PriceTableError(ValueError):
    """The price table itself is malformed (a packaging or editing mistake, not bad stack input)."""


@dataclass(frozen=True)
class Price:
    """One figure: ``amount`` per hour (or per GiB and month for storage); ``None`` when no source had it."""

    amount: float | None
    source: str


@dataclass(frozen=True)
class RegionPrices:
    vm_sizes: dict[str, Price]
    aks_tiers: dict[str, Price]
    load_balancer: Price
    public_ip: Price
    storage_classes: dict[str, Price]

    def vm(self, size: str) -> Price | None:
        """The price of a VM size, matched case-insensitively as Azure treats size names."""
        wanted = size.lower()
        return next((price for name, price in self.vm_sizes.items() if name.lower() == wanted), None)


@dataclass(frozen=True)
class CpuShape:
    vcpus: float
    memory_gib: float


@dataclass(frozen=True)
class PriceTable:
    retrieved: datetime.date
    currency: str
    hours_per_month: float
    max_age_days: int
    regions: dict[str, RegionPrices]
    cpu_vm_sizes: dict[str, CpuShape]
    not_included: tuple[str, ...] = field(default_factory=tuple)

    def region(self, name: str) -> RegionPrices | None:
        return self.regions.get(name.lower())

    def age_days(self, today: datetime.date) -> int:
        return (today - self.retrieved).days

    def is_stale(self, today: datetime.date) -> bool:
        return self.age_days(today) > self.max_age_days

    def cpu_shape(self, size: str) -> CpuShape | None:
        wanted = size.lower()
        return next((shape for name, shape in self.cpu_vm_sizes.items() if name.lower() == wanted), None)


def _price(entry: Any, key: str, where: str) -> Price:
    if not isinstance(entry, dict) or "source" not in entry or key not in entry:
        raise PriceTableError(f"{PRICES_FILE}: {where} needs '{key}' and 'source'")
    amount = entry[key]
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0):
        raise PriceTableError(f"{PRICES_FILE}: {where}.{key} must be a non-negative number or null")
    return Price(None if amount is None else float(amount), str(entry["source"]))


def _prices(entries: Any, key: str, where: str) -> dict[str, Price]:
    if not isinstance(entries, dict):
        raise PriceTableError(f"{PRICES_FILE}: {where} must be a mapping")
    return {str(name): _price(entry, key, f"{where}.{name}") for name, entry in entries.items()}


def parse_table(data: Any) -> PriceTable:
    """Validate the table's data (a test edits copies of it; the CLI reads the packaged file)."""
    if not isinstance(data, dict):
        raise PriceTableError(f"{PRICES_FILE}: expected a mapping")
    try:
        retrieved = datetime.date.fromisoformat(str(data["retrieved"]))
        regions = {
            str(name).lower(): RegionPrices(
                vm_sizes=_prices(region.get("vmSizes", {}), "hourly", f"regions.{name}.vmSizes"),
                aks_tiers=_prices(region.get("aksTiers", {}), "hourly", f"regions.{name}.aksTiers"),
                load_balancer=_price(region.get("loadBalancer"), "hourly", f"regions.{name}.loadBalancer"),
                public_ip=_price(region.get("publicIp"), "hourly", f"regions.{name}.publicIp"),
                storage_classes=_prices(
                    region.get("storageClasses", {}), "perGiBMonth", f"regions.{name}.storageClasses"
                ),
            )
            for name, region in dict(data["regions"]).items()
        }
        shapes = {
            str(name): CpuShape(float(shape["vcpus"]), float(shape["memoryGiB"]))
            for name, shape in dict(data.get("cpuVmSizes") or {}).items()
        }
        return PriceTable(
            retrieved=retrieved,
            currency=str(data["currency"]),
            hours_per_month=float(data["hoursPerMonth"]),
            max_age_days=int(data["maxAgeDays"]),
            regions=regions,
            cpu_vm_sizes=shapes,
            not_included=tuple(str(item) for item in data.get("notIncluded") or ()),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, PriceTableError):
            raise
        raise PriceTableError(f"{PRICES_FILE}: malformed ({error})") from None


@cache
def price_table() -> PriceTable:
    """The packaged table (read once per process; no network)."""
    text = resources.files("infra.cost").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    return parse_table(yaml.safe_load(text))
