"""slm-deploy cost: figures of the reference stacks, the table, the PR delta, the budget rule, the chart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.cost import budget
from infra.cost.table import PriceTableError, parse_table, price_table
from policies.rules import monthly_budget
from tests.helpers import copy_project

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _cost(root: Path, stack: str, *extra: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, ["cost", "--stack", stack, "--root", str(root), "--format", "json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _copy_project(root: Path, tmp_path: Path) -> Path:
    return copy_project(root, tmp_path / "project")


def test_prod_figures_and_the_a100_pool_by_hand(root: Path) -> None:
    data = _cost(root, "prod")
    table = price_table()
    hourly = table.region("westeurope").vm("Standard_NC24ads_A100_v4").amount  # type: ignore[union-attr]
    # By hand: 4.775 USD/h (Karpenter's 2023-12-18 westeurope figure) x 730 h = 3,485.75 a node; pool a100 runs 2
    # to 4 nodes.
    assert hourly == 4.775 and table.hours_per_month == 730
    assert data["pools"]["a100"] == {"min": 6971.5, "max": 13943.0}
    # The pool is cut into MIG 3g.40gb slices, 2 a node (1 A100 each): a model pays its slices' share of the nodes.
    # qwen3-8b: 2 replicas x 1 slice / 2 slices a node = 1 node; qwen3-small: 2 to 6 replicas = 1 to 3 nodes.
    assert data["models"]["qwen3-8b"] == {"min": 3485.75, "max": 3485.75}
    assert data["models"]["qwen3-small"] == {"min": 3485.75, "max": 10457.25}
    # Every pool: a10 (4.16), a100, user and system (D4ds_v5 0.272), at their bounds; then the AKS Standard tier
    # (0.10 x 730 = 73), two Standard load balancers (0.025 x 730 = 18.25 each: AKS's outbound one and the entry
    # point's internal one) and the outbound one's public IP (0.005 x 730 = 3.65).
    pools = {
        "a10": (2, 4, 4.16),
        "a100": (2, 4, 4.775),
        "user": (1, 3, 0.272),
        "system": (2, 3, 0.272),
    }
    shared = 73 + 2 * 18.25 + 3.65
    low = sum(n * price * 730 for n, _, price in pools.values()) + shared
    high = sum(n * price * 730 for _, n, price in pools.values()) + shared
    # Within prod's budget (policies/config/prod.json: monthly-budget 30,000).
    assert data["total"] == {"min": round(low, 2), "max": round(high, 2)} == {"min": 13753.93, "max": 27394.71}
    assert data["region"] == "westeurope" and data["currency"] == "USD" and data["priceDate"] == "2026-12-07"
    # Only the caches are not priced (no source has a per-GiB Azure Files premium figure): nodes, load balancers,
    # the public IP and the tier all are; the totals say they are a lower bound.
    assert {item["category"] for item in data["unpriced"]} == {"storage"}
    assert data["complete"] is False and data["totalIsLowerBound"] is True
    assert "support plans" in data["notIncluded"]
    assert set(data["sources"]) == {"karpenter-2023-12-18", "retail-2026"}


def test_reference_stacks_price_every_node_balancer_ip_and_tier(root: Path) -> None:
    for stack in ("dev", "staging", "prod"):
        data = _cost(root, stack)
        assert {item["category"] for item in data["unpriced"]} <= {"storage"}, (stack, data["unpriced"])
        assert data["regionInTable"] is True


@pytest.mark.parametrize(("region", "total_max"), [("eastus", 21172.19), ("swedencentral", 27254.55)])
def test_prod_moved_to_another_region_is_priced_there(
    root: Path, tmp_path: Path, region: str, total_max: float
) -> None:
    project = _copy_project(root, tmp_path)
    stack = project / "stacks" / "Pulumi.prod.yaml"
    stack.write_text(stack.read_text().replace("location: westeurope", f"location: {region}"))
    data = _cost(project, "prod")
    assert data["region"] == region and data["regionInTable"] is True
    assert {item["category"] for item in data["unpriced"]} == {"storage"}
    assert data["total"]["max"] == total_max


def test_existing_cluster_stacks_price_their_share(root: Path) -> None:
    staging = _cost(root, "staging")
    assert staging["mode"] == "existing" and staging["region"] == "westeurope"
    # phi4-mini on costBasis.gpuVmSize NC24ads_A100_v4 (1 GPU a node): one node; qwen3-4b's two replicas on its
    # pool's NV36ads_A10_v5 (4.16 USD/h): two nodes; its endpoint picker's 250m CPU and 256Mi as a share of a
    # D4ds_v5 (1/16 of 0.272 USD/h: its memory share is smaller); the entry point's internal load balancer.
    assert staging["models"]["phi4-mini"] == {"min": 3485.75, "max": 3485.75}
    assert staging["models"]["qwen3-4b"] == {"min": 6073.6, "max": 6073.6}
    assert staging["models"]["qwen3-4b-epp"] == {"min": 12.41, "max": 12.41}
    total = round(3485.75 + 6073.6 + 12.41 + 18.25, 2)
    assert staging["total"] == {"min": total, "max": total}
    dev = _cost(root, "dev")
    request = dev["requests"][0]
    # qwen3-micro scales to zero when idle (docs/scale-to-zero.md): nothing at min scale, one replica at max.
    assert request["model"] == "qwen3-micro" and request["cpu"] == {"min": 0.0, "max": 2.0}
    assert request["memoryGiB"] == {"min": 0.0, "max": 4.0} and request["gpus"] == {"min": 0, "max": 0}
    # Half a D4ds_v5 (2 of 4 vCPUs) at westeurope's 0.272 USD/h at max scale.
    share = next(line for line in dev["lines"] if line["category"] == "share")
    assert share["quantity"] == {"min": 0, "max": 0.5} and share["monthly"] == {"min": 0.0, "max": 99.28}


def test_json_shape(root: Path) -> None:
    data = _cost(root, "prod")
    assert set(data) >= {
        "stack",
        "mode",
        "region",
        "currency",
        "priceDate",
        "total",
        "models",
        "pools",
        "lines",
        "unpriced",
        "notIncluded",
        "requests",
        "complete",
        "totalIsLowerBound",
        "regionInTable",
        "tokenCosts",
        "sources",
        "organisationPriceFile",
    }
    line = data["lines"][0]
    assert set(line) == {
        "category",
        "item",
        "model",
        "pool",
        "unit",
        "quantity",
        "unitMonthly",
        "monthly",
        "source",
        "priceOrigin",
        "spot",
    }
    assert set(data["unpriced"][0]) == {"category", "item", "reason", "model", "pool"}

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | set().union(*(keys(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(keys(v) for v in value)) if value else set()
        return set()

    # One key style: camelCase (model and pool names are data, not keys, and are lowercase anyway).
    assert not {key for key in keys(data) if "_" in key}


def test_text_and_markdown_name_date_region_and_exclusions(root: Path) -> None:
    text = CliRunner().invoke(app, ["cost", "--stack", "prod", "--root", str(root)]).stdout
    assert "region westeurope, prices of 2026-12-07 in USD" in text and "not included:" in text
    assert "monthly total: at least USD 13,753.93 at min scale, at least USD 27,394.71 at max scale" in text
    assert "not priced (no figure in the table; left out of the totals, which are a lower bound):" in text
    assert "karpenter-2023-12-18: Karpenter provider for Azure" in text and "@ 0499866a0874" in text
    markdown = CliRunner().invoke(app, ["cost", "--stack", "prod", "--root", str(root), "-f", "markdown"]).stdout
    assert "| **Total (at least)** | at least USD 13,753.93 | at least USD 27,394.71 |" in markdown
    assert "- `qwen3-8b-cache (azurefile-csi-premium), 60 GiB asked, 100 GiB provisioned`: storage class" in markdown


def test_png_is_an_image(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cost.png"
    result = CliRunner().invoke(app, ["cost", "--stack", "prod", "--root", str(root), "-f", "png", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    from matplotlib import image

    assert image.imread(str(out)).shape[:2] == (500, 1200)
    from infra.cost.chart import chart_title
    from infra.cost.stack import estimate_plan
    from tests.conftest import planned

    title = chart_title(estimate_plan(planned("prod", False)))
    assert title.startswith("prod: monthly cost at least USD 13,754 (min) - at least 27,395 (max)")
    assert title.endswith("not priced, left out of the totals: qwen3-8b-cache, qwen3-small-cache")
    assert "at least" in result.stdout


def test_diff_shows_the_cost_of_a_changed_pool(root: Path, tmp_path: Path) -> None:
    project = _copy_project(root, tmp_path)
    base = tmp_path / "base"
    assert CliRunner().invoke(app, ["render", "-s", "prod", "--root", str(project), "-o", str(base)]).exit_code == 0
    stack = project / "stacks" / "Pulumi.prod.yaml"
    text = stack.read_text()
    old = "vmSize: Standard_NC24ads_A100_v4\n        minCount: 2\n        maxCount: 4\n"
    assert old in text
    stack.write_text(text.replace(old, old.replace("maxCount: 4", "maxCount: 5")))
    args = ["diff", "-s", "prod", "--root", str(project), "--base", str(base)]
    markdown = CliRunner().invoke(app, [*args, "-f", "markdown"])
    assert markdown.exit_code == 1, markdown.output
    assert "### Monthly cost" in markdown.stdout
    assert "| `pool a100` | USD 6,971.50 / USD 13,943.00 | USD 6,971.50 / USD 17,428.75 | ±0 / +USD 3,485.75 |" in (
        markdown.stdout
    )
    assert "| **total** | at least USD 13,753.93 / at least USD 27,394.71 |" in markdown.stdout
    data = json.loads(CliRunner().invoke(app, [*args, "-f", "json"]).stdout)
    total = next(row for row in data["cost"]["rows"] if row["item"] == "total")
    assert total["delta"] == {"min": 0.0, "max": 3485.75} and data["cost"]["changed"] is True
    assert data["cost"]["complete"] == {"before": False, "after": False}


def _pack_with(root: Path, tmp_path: Path, level: str, entry: dict) -> Path:  # type: ignore[type-arg]
    pack = tmp_path / "pack"
    shutil.copytree(root / "policies", pack, ignore=shutil.ignore_patterns("__pycache__"))
    config_file = pack / "config" / f"{level}.json"
    config = json.loads(config_file.read_text())
    config["monthly-budget"] = entry
    config_file.write_text(json.dumps(config))
    return pack


def test_budget_fails_check_where_mandatory_in_every_format(root: Path, tmp_path: Path) -> None:
    pack = _pack_with(root, tmp_path, "prod", {"enforcementLevel": "mandatory", "monthlyBudget": 5000})
    base = ["check", "-s", "prod", "--root", str(root), "--policy-pack", str(pack)]
    for fmt in ("text", "json", "sarif", "junit", "markdown"):
        result = CliRunner().invoke(app, [*base, "-f", fmt])
        assert result.exit_code == 1, (fmt, result.output)
        assert "SLM-COST-001" in result.stdout or "monthly-budget" in result.stdout, fmt
    data = json.loads(CliRunner().invoke(app, [*base, "-f", "json"]).stdout)
    assert "over the budget of USD 5,000.00" in json.dumps(data)


def test_budget_only_warns_where_advisory(root: Path, tmp_path: Path) -> None:
    pack = _pack_with(root, tmp_path, "staging", {"enforcementLevel": "advisory", "monthlyBudget": 1000})
    result = CliRunner().invoke(
        app, ["check", "-s", "staging", "--root", str(root), "--policy-pack", str(pack), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "over the budget of USD 1,000.00" in result.stdout


def test_a_waiver_of_the_budget_applies(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2026-12-01")
    project = _copy_project(root, tmp_path)
    stack = project / "stacks" / "Pulumi.prod.yaml"
    stack.write_text(
        stack.read_text()
        + """  slm-deploy:waivers:
    - policy: monthly-budget
      resource: aks-cluster-cluster
      reason: the a100 pool doubles for the migration until the old cluster is gone
      owner: ml-platform
      expires: 2027-01-15
      maxMonthlyUsd: 30000
"""
    )
    pack = _pack_with(root, tmp_path, "prod", {"enforcementLevel": "mandatory", "monthlyBudget": 5000})
    result = CliRunner().invoke(
        app, ["check", "-s", "prod", "--root", str(project), "--policy-pack", str(pack), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    budget_results = [r for r in report["results"] if r["policyName"] == "monthly-budget"]
    assert [r["status"] for r in budget_results] == ["waived"], budget_results
    assert budget_results[0]["resourceName"] == "aks-cluster-cluster" and report["summary"]["waived"] == 1


def test_reference_levels_set_budgets_that_the_reference_stacks_meet(root: Path) -> None:
    levels = {
        level: json.loads((root / "policies" / "config" / f"{level}.json").read_text())
        for level in ("dev", "staging", "prod")
    }
    assert levels["dev"]["monthly-budget"]["enforcementLevel"] == "advisory"
    assert levels["prod"]["monthly-budget"]["enforcementLevel"] == "mandatory"
    assert levels["prod"]["monthly-budget"]["monthlyBudget"] >= _cost(root, "prod")["total"]["max"]


def test_estimate_key_is_the_rules(root: Path) -> None:
    assert budget.ESTIMATE_KEY == monthly_budget.ESTIMATE_KEY


def test_stale_table_warns_in_validate(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = CliRunner().invoke(app, ["validate", "-s", "dev", "--root", str(root)])
    assert "price table" not in fresh.output
    monkeypatch.setenv("SLM_DEPLOY_TODAY", "2027-06-01")
    stale = CliRunner().invoke(app, ["validate", "-s", "dev", "--root", str(root)])
    assert stale.exit_code == 0
    assert "the price table (infra/cost/prices.yaml) is 176 days old, more than its maxAgeDays 120" in stale.output


def test_every_table_figure_has_a_source_and_unknowns_are_null() -> None:
    data = price_table()
    for region in data.regions.values():
        for price in (*region.vm_sizes.values(), *region.storage_classes.values(), region.public_ip):
            assert price.source
            assert price.amount is not None or price.source == "no source has this figure"
            assert price.amount is None or price.source in data.sources, price
    with pytest.raises(PriceTableError, match="non-negative"):
        parse_table(
            {
                "retrieved": "2026-11-29",
                "currency": "USD",
                "hoursPerMonth": 730,
                "maxAgeDays": 1,
                "regions": {
                    "x": {
                        "vmSizes": {"a": {"hourly": -1, "source": "s"}},
                        "loadBalancer": {"hourly": 0, "source": "s"},
                        "publicIp": {"hourly": 0, "source": "s"},
                    }
                },
            }
        )
    with pytest.raises(PriceTableError, match="has a figure but no source"):
        parse_table(
            {
                "retrieved": "2026-11-29",
                "currency": "USD",
                "hoursPerMonth": 730,
                "maxAgeDays": 1,
                "regions": {"x": {"loadBalancer": {"hourly": 1}, "publicIp": {"hourly": None}}},
            }
        )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def test_bad_input_exits_2_with_one_line(root: Path, tmp_path: Path) -> None:
    project = _copy_project(root, tmp_path)
    stack = project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("region: westeurope", "region: West Europe"))
    bad = _cli("cost", "-s", "dev", "--root", str(project), cwd=root)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "Pulumi.dev.yaml" in lines[0] and "cluster.costBasis.region" in lines[0], lines
    missing = _cli("cost", "-s", "nope", "--root", str(root), cwd=root)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    png = _cli("cost", "-s", "prod", "--root", str(root), "-f", "png", cwd=root)
    assert png.returncode == 2 and png.stderr.strip() == "error: --format png writes an image: give --out FILE.png"


def _deployment(model: str, replicas: int, cpu: str, memory: str, gpus: int = 0, pool: str | None = None) -> dict:  # type: ignore[type-arg]
    requests = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": model,
            "namespace": f"slm-{model}",
            "labels": {"app.kubernetes.io/instance": model, "app.kubernetes.io/component": "model-server"},
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [{"name": "server", "resources": {"requests": requests}}],
                    **({"nodeSelector": {"slm-deploy.io/gpu-pool": pool}} if pool else {}),
                }
            },
        },
    }


def test_inventory_reads_autoscaler_bounds_public_load_balancers_and_claims() -> None:
    from infra.cost.inventory import read_inventory

    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "m", "namespace": "slm-m"},
        "spec": {"minReplicaCount": 2, "maxReplicaCount": 6, "scaleTargetRef": {"name": "m"}},
    }
    public = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}}
    internal = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ilb", "annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}},
        "spec": {"type": "LoadBalancer"},
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "m-cache", "labels": {"app.kubernetes.io/instance": "m"}},
        "spec": {"resources": {"requests": {"storage": "512Mi"}}},
    }
    found = read_inventory([_deployment("m", 1, "500m", "2Gi", 1, "t4"), scaled, public, internal, claim])
    (workload,) = found.workloads
    assert (workload.min_replicas, workload.max_replicas, workload.cpu, workload.memory_gib) == (2, 6, 0.5, 2.0)
    assert (workload.gpus, workload.pool) == (1, "t4")
    assert [(b.name, b.public) for b in found.load_balancers] == [("lb", True), ("ilb", False)]
    assert found.volumes[0].size_gib == 0.5 and found.volumes[0].storage_class is None
    assert found.aks_tier is None and found.pools == ()


def test_existing_cluster_share_uses_the_larger_of_cpu_and_memory() -> None:
    from infra.cost.estimate import ExistingNodes, estimate
    from infra.cost.inventory import read_inventory

    table = price_table()
    # 1 vCPU of 4 is a quarter; 12 GiB of 16 is three quarters: memory decides. Two GPU replicas on a 1-GPU size
    # take two whole nodes.
    inventory = read_inventory([_deployment("cpu", 2, "1", "12Gi"), _deployment("gpu", 2, "4", "16Gi", gpus=1)])
    nodes = ExistingNodes(
        region="westeurope", cpu_vm_size="Standard_D4ds_v5", gpu_vm_sizes={"gpu": "Standard_NC24ads_A100_v4"}
    )
    result = estimate("s", inventory, table, nodes)
    shares = {line.model: line.quantity_max for line in result.lines if line.category == "share"}
    assert shares == {"cpu": 1.5, "gpu": 2}
    assert result.model_total("gpu") == (2 * 4.775 * 730, 2 * 4.775 * 730)
    elsewhere = estimate(
        "s", inventory, table, ExistingNodes("mars", "Standard_D4ds_v5", {"gpu": "Standard_NC24ads_A100_v4"})
    )
    assert elsewhere.total == (0.0, 0.0) and not elsewhere.region_in_table and not elsewhere.complete
    assert {item.reason for item in elsewhere.unpriced_items()} == {"region mars is not in the price table"}
