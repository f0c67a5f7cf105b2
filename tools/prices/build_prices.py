"""Write infra/cost/prices.yaml from the price sources listed in tools/prices/sources.yaml.

Usage (from the repository root, with the project's Python):

    python tools/prices/build_prices.py [tools/prices/sources.yaml] [--out infra/cost/prices.yaml] [--check]

The sources are files saved from public repositories (this machine reaches no cloud API): a SkyPilot catalog
CSV, a Karpenter-for-Azure generated Go price map, Azure Retail Prices API answers (JSON with ``Items``), and a
short list of figures quoted from public pages. Each figure in the table names the source it came from; a
figure no source has stays ``null`` and ``slm-deploy cost`` reports it as not priced. ``--check`` exits 1 when
the table on disk is not what the sources give (a test runs it), instead of writing it.

The inventory is every VM size in infra/sizing/vm_sizes.py, the storage classes AKS ships, the Standard load
balancer, a Standard public IP and the AKS tiers, in the regions of ``regions:`` in the manifest.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.sizing.vm_sizes import ALL_VM_SIZE_NAMES, CPU_VM_SIZES  # noqa: E402 - after the path set-up

DEFAULT_MANIFEST = ROOT / "tools" / "prices" / "sources.yaml"
DEFAULT_OUT = ROOT / "infra" / "cost" / "prices.yaml"
AKS_TIERS = ("Free", "Standard", "Premium")
#: AKS's built-in storage classes (what a cache volume's storageClass may name on AKS) and what they provision.
STORAGE_CLASSES: dict[str, dict[str, Any]] = {
    "managed-csi": {"product": "Standard SSD managed disk (StandardSSD_LRS)", "billing": "per disk tier (E sizes)"},
    "managed-csi-premium": {"product": "Premium SSD managed disk (Premium_LRS)", "billing": "per disk tier (P sizes)"},
    "azurefile-csi": {"product": "Azure Files standard (Standard_LRS)", "billing": "per GiB used"},
    # Premium shares are provisioned: a claim smaller than 100 GiB gets (and pays for) 100 GiB (the Azure File
    # CSI driver's minimum premium share size, kubernetes/kubernetes#99122).
    "azurefile-csi-premium": {
        "product": "Azure Files premium (Premium_LRS, provisioned)",
        "billing": "per provisioned GiB",
        "minimumGiB": 100,
    },
}
#: Retail meters: (serviceName, productName or None for any, meterName) -> what it prices and the unit it must be in.
RETAIL_METERS = {
    ("Azure Kubernetes Service", None, "Standard Uptime SLA"): ("aksTier", "Standard", "hourly", "1 Hour"),
    ("Azure Kubernetes Service", None, "Standard Long Term Support"): ("aksTier", "Premium", "hourly", "1 Hour"),
    ("Virtual Network", None, "Standard IPv4 Static Public IP"): ("publicIp", None, "hourly", "1 Hour"),
    ("Load Balancer", None, "Standard Included LB Rules and Outbound Rules"): (
        "loadBalancer",
        None,
        "hourly",
        "1 Hour",
    ),
    # Azure Files premium, provisioned v1 (what azurefile-csi-premium creates), per provisioned GiB and month: in a
    # region's storage.json of the retail-2026 repository (not saved yet, docs/cost.md).
    ("Storage", "Premium Files", "Premium LRS Provisioned"): (
        "storageClass",
        "azurefile-csi-premium",
        "perGiBMonth",
        "1 GiB/Month",
    ),
}
_KARPENTER_REGION = re.compile(r'initialOnDemandPrices\["([a-z0-9]+)"\]\s*=\s*map')
_KARPENTER_ROW = re.compile(r'"([^"]+)":\s*([0-9.]+)')


@dataclass(frozen=True)
class Figure:
    """One figure a source gives: ``key`` is (region or ``*``, item kind, name, field)."""

    region: str
    kind: str
    name: str
    field: str
    value: float
    source: str
    note: str | None = None


def _skypilot(path: Path, source: str) -> Iterator[Figure]:
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            size, region = row["InstanceType"], row["Region"]
            price, spot = row.get("Price") or "", row.get("SpotPrice") or ""
            if price:
                yield Figure(region, "vm", size, "hourly", float(price), source)
            if spot and spot != price:
                yield Figure(region, "vm", size, "spotHourly", float(spot), source)


def _karpenter(path: Path, source: str) -> Iterator[Figure]:
    region = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("//"):
            continue
        found = _KARPENTER_REGION.search(line)
        if found:
            region = found.group(1)
            continue
        row = _KARPENTER_ROW.search(line)
        if row and region is not None:
            yield Figure(region, "vm", row.group(1), "hourly", float(row.group(2)), source)


def _retail(path: Path, source: str) -> Iterator[Figure]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for item in data.get("Items", []):
        if item.get("type") != "Consumption" or float(item.get("tierMinimumUnits") or 0) != 0:
            continue
        service, meter_name = item.get("serviceName"), item.get("meterName")
        meter = RETAIL_METERS.get((service, item.get("productName"), meter_name)) or RETAIL_METERS.get(
            (service, None, meter_name)
        )
        if meter is None:
            continue
        kind, name, field, unit = meter
        if item.get("unitOfMeasure") != unit:
            raise ValueError(f"{path}: {meter_name} is in {item.get('unitOfMeasure')!r}, expected {unit!r}")
        region = "*" if item.get("armRegionName") == "Global" else str(item["armRegionName"])
        note = f"{service}: {meter_name} ({unit})"
        yield Figure(region, kind, name or kind, field, float(item["retailPrice"]), source, note)


def _stated(path: Path, source: str) -> Iterator[Figure]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for entry in data.get("entries", []):
        note = f'{entry["url"]} ({entry["dated"]}): "{entry["quote"]}"'
        kind = str(entry["item"])
        yield Figure(
            str(entry["region"]), kind, str(entry.get("name", kind)), "hourly", float(entry["hourly"]), source, note
        )


READERS = {"skypilot-csv": _skypilot, "karpenter-go": _karpenter, "retail-json": _retail, "stated": _stated}


def read_figures(manifest: dict[str, Any], base: Path, overrides: dict[str, list[Path]]) -> list[Figure]:
    """Every figure of every source, in the manifest's order of preference."""
    figures: list[Figure] = []
    for source in manifest["preference"]:
        spec = manifest["sources"][source]
        files = overrides.get(source) or [base / name for name in (spec.get("files") or [spec["file"]])]
        for path in files:
            figures += READERS[spec["kind"]](path, source)
    return figures


def _pick(
    figures: Iterable[Figure], region: str, kind: str, name: str, field: str
) -> tuple[Figure | None, list[Figure]]:
    """The preferred figure (a regional one before a region-less ``*`` one) and the others that differ from it."""
    candidates = [f for f in figures if f.kind == kind and f.name.lower() == name.lower() and f.field == field]
    regional = [f for f in candidates if f.region == region]
    chosen = next(iter(regional or [f for f in candidates if f.region == "*"]), None)
    others = [f for f in regional if chosen is not None and f.value != chosen.value and f is not chosen]
    return chosen, others


def _entry(chosen: Figure | None, spot: Figure | None = None, spot_note: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"hourly": None if chosen is None else chosen.value}
    if spot is not None or spot_note is not None:
        entry["spotHourly"] = None if spot is None else spot.value
    entry["source"] = None if chosen is None else chosen.source
    if chosen is not None and chosen.region == "*":
        entry["regional"] = False
    notes = [n for n in (chosen.note if chosen else None, spot_note) if n]
    if notes:
        entry["note"] = "; ".join(notes)
    return entry


def _storage(figures: list[Figure], region: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    chosen, _ = _pick(figures, region, "storageClass", name, "perGiBMonth")
    entry: dict[str, Any] = {"perGiBMonth": None if chosen is None else chosen.value}
    entry["source"] = None if chosen is None else chosen.source
    if "minimumGiB" in spec:
        entry["minimumGiB"] = spec["minimumGiB"]
    if chosen is not None and chosen.note:
        entry["note"] = chosen.note
    return entry


def build_table(manifest: dict[str, Any], figures: list[Figure]) -> dict[str, Any]:
    regions: dict[str, Any] = {}
    disagreements: list[dict[str, Any]] = []
    for region in manifest["regions"]:
        sizes: dict[str, Any] = {}
        for size in ALL_VM_SIZE_NAMES:
            chosen, others = _pick(figures, region, "vm", size, "hourly")
            spot, _ = _pick(figures, region, "vm", size, "spotHourly")
            spot_note = None
            if chosen is not None and spot is None:
                spot_note = "no spot figure in the sources"
            sizes[size] = _entry(chosen, spot, spot_note)
            disagreements += [
                {
                    "region": region,
                    "item": size,
                    "taken": chosen.value,
                    "takenFrom": chosen.source,
                    "other": other.value,
                    "otherFrom": other.source,
                }
                for other in others
                if chosen is not None
            ]
        tiers = {tier: _entry(_pick(figures, region, "aksTier", tier, "hourly")[0]) for tier in AKS_TIERS}
        regions[region] = {
            "vmSizes": sizes,
            "aksTiers": tiers,
            "loadBalancer": _entry(_pick(figures, region, "loadBalancer", "loadBalancer", "hourly")[0]),
            "publicIp": _entry(_pick(figures, region, "publicIp", "publicIp", "hourly")[0]),
            "storageClasses": {name: _storage(figures, region, name, spec) for name, spec in STORAGE_CLASSES.items()},
        }
    sources = {
        name: {key: spec[key] for key in ("title", "repo", "path", "commit", "dated", "unit", "note") if key in spec}
        for name, spec in manifest["sources"].items()
    }
    return {
        "retrieved": manifest["retrieved"],
        "currency": manifest["currency"],
        "hoursPerMonth": manifest["hoursPerMonth"],
        "maxAgeDays": manifest["maxAgeDays"],
        "sources": sources,
        "storageProducts": STORAGE_CLASSES,
        "cpuVmSizes": {size.name: {"vcpus": size.vcpus, "memoryGiB": size.memory_gib} for size in CPU_VM_SIZES},
        "disagreements": disagreements,
        "regions": regions,
        "notIncluded": [
            "data egress and load-balancer processed data (Standard load balancer: USD 0.005 per GB processed)",
            "load-balancer rules beyond the first five",
            "logs and metrics storage (Log Analytics, Azure Monitor)",
            "support plans",
            "node OS disks and snapshots",
            "reservations, savings plans and negotiated discounts (unless an organisation price file says so)",
            "taxes",
        ],
    }


HEADER = (
    "# Generated by tools/prices/build_prices.py from tools/prices/sources.yaml: do not edit by hand (docs/cost.md,\n"
    '# "Refreshing the table"). Pay-as-you-go list prices, Linux, in USD; `null`: no source has the figure, and\n'
    "# `slm-deploy cost` reports the item as not priced. An organisation's own figures go in\n"
    "# policies/config/prices.yaml, not here.\n"
)


def _represent_dict(dumper: Any, data: dict[str, Any]) -> Any:
    """One line per leaf mapping (a figure and its source), blocks above: a table a reviewer can read."""
    leaf = all(not isinstance(value, dict | list) for value in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=leaf and len(data) < 6)


_Dumper: Any = type("_Dumper", (yaml.SafeDumper,), {})
_Dumper.add_representer(dict, _represent_dict)


def render(table: dict[str, Any]) -> str:
    return HEADER + str(yaml.dump(table, Dumper=_Dumper, sort_keys=False, width=118, allow_unicode=True))


def coverage(table: dict[str, Any]) -> tuple[int, int]:
    """(size x region pairs with an on-demand figure, all pairs)."""
    pairs = [entry for region in table["regions"].values() for entry in region["vmSizes"].values()]
    return sum(1 for entry in pairs if entry["hourly"] is not None), len(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", nargs="?", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="Exit 1 if --out differs from what the sources give.")
    parser.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="SOURCE=PATH",
        help="Read this (full) copy of a source instead of the saved excerpt, e.g. karpenter-2023-12-18=zz.go",
    )
    args = parser.parse_args(argv)
    overrides: dict[str, list[Path]] = {}
    for item in args.file:
        name, _, path = item.partition("=")
        overrides.setdefault(name, []).append(Path(path))
    manifest = yaml.safe_load(args.manifest.read_text(encoding="utf-8"))
    unknown = set(overrides) - set(manifest["sources"])
    if unknown:
        print(f"error: --file names unknown sources: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    table = build_table(manifest, read_figures(manifest, args.manifest.parent, overrides))
    text = render(table)
    priced, total = coverage(table)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is not what {args.manifest} gives: run tools/prices/build_prices.py", file=sys.stderr)
            return 1
        print(f"{args.out} is current: {priced}/{total} size-region pairs priced")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {priced}/{total} size-region pairs priced, {len(table['disagreements'])} disagreements")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
