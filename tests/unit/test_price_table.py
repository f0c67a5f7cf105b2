"""The price table: generated from the saved sources, covering every VM size in every region it lists, spot
figures, an organisation's own prices, and `validate`'s warnings for what it cannot price."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.cost.coverage import price_coverage
from infra.cost.estimate import estimate
from infra.cost.inventory import Inventory, Pool
from infra.cost.table import ORG_PRICES_FILE, parse_table, price_table
from infra.plan.stack import load_stack
from infra.sizing.vm_sizes import ALL_VM_SIZE_NAMES, CPU_VM_SIZES, VM_SIZES
from tests.helpers import copy_project

REGIONS = ("eastus", "eastus2", "westus2", "westus3", "westeurope", "northeurope", "swedencentral", "uksouth")
US = ("eastus", "eastus2", "westus2", "westus3")
H100 = ("Standard_NC40ads_H100_v5", "Standard_NC80adis_H100_v5")


def test_the_table_is_what_the_saved_sources_give(root: Path) -> None:
    # The generator run in --check mode: the committed table is exactly what tools/prices/sources/ produce.
    result = subprocess.run(
        [sys.executable, str(root / "tools" / "prices" / "build_prices.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "110/120 size-region pairs priced" in result.stdout


def test_every_size_of_the_inventory_is_in_every_region() -> None:
    table = price_table()
    assert set(REGIONS) <= set(table.regions)
    assert len(ALL_VM_SIZE_NAMES) == len(VM_SIZES) + len(CPU_VM_SIZES) == 15
    priced = 0
    for region in REGIONS:
        prices = table.region(region)
        assert prices is not None
        for size in ALL_VM_SIZE_NAMES:
            price = prices.vm(size)
            assert price is not None, (region, size)  # an entry, priced or null, for every pair
            priced += price.amount is not None
        # A Standard load balancer (a Global meter) and a Standard public IP and the AKS Standard tier everywhere.
        assert prices.load_balancer.amount == 0.025 and prices.public_ip.amount == 0.005
        assert prices.aks_tiers["Standard"].amount == 0.1 and prices.aks_tiers["Free"].amount == 0
    # Missing: the two NC H100 sizes in westus2 and in the four European regions (no source has them).
    assert priced == 110
    for region in REGIONS:
        for size in H100:
            assert (table.region(region).vm(size).amount is None) == (region not in ("eastus", "eastus2", "westus3"))  # type: ignore[union-attr]


def test_spot_figures_where_the_source_has_them() -> None:
    table = price_table()
    for region in US:
        for size in ALL_VM_SIZE_NAMES:
            price = table.region(region).vm(size)  # type: ignore[union-attr]
            assert price is not None
            # SkyPilot repeats the on-demand price as "spot" for the H100 sizes: that is no spot figure.
            assert (price.spot is None) == (size in H100 or price.amount is None), (region, size)
    assert table.region("eastus").vm("Standard_NC24ads_A100_v4").spot == 0.444433  # type: ignore[union-attr]
    assert all(price.spot is None for price in table.region("westeurope").vm_sizes.values())  # type: ignore[union-attr]


def _pool_inventory(region: str, spot: bool) -> Inventory:
    pool = Pool("a100", "Standard_NC24ads_A100_v4", 1, 2, "User", spot=spot)
    return Inventory(region, "Free", (pool,), (), (), ())


def test_a_spot_pool_is_priced_at_the_spot_figure_or_left_out_with_its_ceiling() -> None:
    table = price_table()
    eastus = estimate("s", _pool_inventory("eastus", spot=True), table)
    line = next(x for x in eastus.total_lines if x.category == "nodes")
    assert line.spot and line.item == "Standard_NC24ads_A100_v4 (spot)"
    assert line.unit_monthly == pytest.approx(0.444433 * 730)
    westeurope = estimate("s", _pool_inventory("westeurope", spot=True), table)
    (missing,) = westeurope.unpriced_items()
    assert missing.reason == (
        "Standard_NC24ads_A100_v4 (spot): no spot figure for westeurope; a spot VM with maxPrice -1 costs at most "
        "the on-demand USD 3,485.75 a month"
    )
    assert not westeurope.complete
    on_demand = estimate("s", _pool_inventory("westeurope", spot=False), table)
    assert on_demand.complete and on_demand.total == pytest.approx((3485.75, 6971.5))


def _project(root: Path, tmp_path: Path) -> Path:
    return copy_project(root, tmp_path / "project")


def test_an_organisation_price_file_fills_and_overrides_and_says_so(root: Path, tmp_path: Path) -> None:
    project = _project(root, tmp_path)
    own = project / ORG_PRICES_FILE
    own.parent.mkdir(parents=True)
    # An organisation's figures (test inputs): a negotiated A100 price and the premium file share price it pays.
    own.write_text(
        yaml.safe_dump(
            {
                "retrieved": "2026-11-01",
                "regions": {
                    "westeurope": {
                        "vmSizes": {"Standard_NC24ads_A100_v4": {"hourly": 4.0}},
                        "storageClasses": {"azurefile-csi-premium": {"perGiBMonth": 0.2}},
                    }
                },
            }
        )
    )
    result = CliRunner().invoke(app, ["cost", "-s", "prod", "--root", str(project), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["organisationPriceFile"] == "policies/config/prices.yaml"
    assert data["complete"] is True and data["unpriced"] == []
    assert data["pools"]["a100"] == {"min": 2 * 4.0 * 730, "max": 4 * 4.0 * 730}
    cache = next(line for line in data["lines"] if line["item"].startswith("qwen3-8b-cache"))
    # 60 GiB asked, 100 GiB provisioned (the premium share minimum), at 0.2 a GiB-month.
    assert cache["priceOrigin"] == "organisation" and cache["monthly"] == {"min": 20.0, "max": 20.0}
    a10 = next(line for line in data["lines"] if line["pool"] == "a10" and line["category"] == "nodes")
    assert a10["priceOrigin"] == "public"
    text = CliRunner().invoke(app, ["cost", "-s", "prod", "--root", str(project)]).stdout
    assert "(organisation price)" in text and "organisation prices: policies/config/prices.yaml" in text
    assert "monthly total: USD" in text and "at least" not in text


def _warnings(project: Path) -> list[tuple[tuple[object, ...], str]]:
    _, config = load_stack("prod", project)
    return price_coverage(config)


def test_validate_warns_for_a_region_or_size_the_table_lacks(root: Path, tmp_path: Path) -> None:
    assert _warnings(root) == []
    project = _project(root, tmp_path)
    stack = project / "stacks" / "Pulumi.prod.yaml"
    original = stack.read_text()
    stack.write_text(original.replace("location: westeurope", "location: brazilsouth"))
    ((path, message),) = _warnings(project)
    assert path == ("cluster", "location") and message.startswith("region 'brazilsouth' is not in the price table")
    result = CliRunner().invoke(app, ["validate", "-s", "prod", "--root", str(project)])
    assert result.exit_code == 0
    assert "warning: " in result.output and "slm-deploy:cluster.location: region 'brazilsouth'" in result.output
    old = "vmSize: Standard_NC24ads_A100_v4"  # the a100 pool's
    stack.write_text(original.replace(old, "vmSize: Standard_NC40ads_H100_v5"))
    ((path, message),) = _warnings(project)
    assert path == ("cluster", "gpuPools", 1, "vmSize")
    assert message.startswith("the price table has no figure for Standard_NC40ads_H100_v5 in westeurope")


def test_a_saved_storage_answer_fills_the_premium_file_share_price(root: Path, tmp_path: Path) -> None:
    # The row shape of the Retail Prices API (a region's storage.json); the figure is a test input, not a price.
    row = {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": 0.123,
        "armRegionName": "westeurope",
        "meterName": "Premium LRS Provisioned",
        "productName": "Premium Files",
        "skuName": "Premium LRS",
        "serviceName": "Storage",
        "unitOfMeasure": "1 GiB/Month",
        "type": "Consumption",
    }
    storage = tmp_path / "storage.json"
    storage.write_text(json.dumps({"Items": [row]}))
    sources = root / "tools" / "prices"
    retail = yaml.safe_load((sources / "sources.yaml").read_text())["sources"]["retail-2026"]["files"]
    files = [f"--file=retail-2026={sources / name}" for name in retail] + [f"--file=retail-2026={storage}"]
    out = tmp_path / "prices.yaml"
    script = str(sources / "build_prices.py")
    run = subprocess.run(
        [sys.executable, script, *files, "--out", str(out)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    premium = parse_table(yaml.safe_load(out.read_text())).region("westeurope").storage_classes["azurefile-csi-premium"]  # type: ignore[union-attr]
    assert (premium.amount, premium.source, premium.minimum) == (0.123, "retail-2026", 100)
    storage.write_text(json.dumps({"Items": [{**row, "unitOfMeasure": "1 GB/Month"}]}))
    wrong = subprocess.run(
        [sys.executable, script, *files, "--out", str(out)], capture_output=True, text=True, check=False
    )
    assert wrong.returncode != 0 and "expected '1 GiB/Month'" in wrong.stderr
