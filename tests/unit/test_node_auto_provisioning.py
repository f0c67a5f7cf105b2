"""AKS node auto-provisioning (docs/node-auto-provisioning.md): Karpenter NodePools with limits instead of fixed GPU
pools, the cluster's profile, the one-line errors, and the limits as the cost's maximum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from infra.cli import app
from infra.cost.estimate import estimate
from infra.cost.inventory import read_inventory
from infra.cost.table import price_table
from infra.plan.crds import validate_custom_resource
from tests.helpers import copy_project


def _render(root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "render"
    result = CliRunner().invoke(app, ["render", "-s", "nap", "--root", str(root), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def test_gpu_pools_become_limited_node_pools_and_the_cluster_runs_nap(root: Path, tmp_path: Path) -> None:
    out = _render(root, tmp_path)
    pool = _load(out / "_cluster" / "nodepool.karpenter.sh--t4.yaml")
    node_class = _load(out / "_cluster" / "aksnodeclass.karpenter.azure.com--t4.yaml")
    assert "namespace" not in pool["metadata"] and "namespace" not in node_class["metadata"]  # cluster-scoped
    # maxCount 3 x 1 GPU per NC8as_T4_v3: Karpenter never holds more than 3 GPUs in this pool.
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": "3"}
    template = pool["spec"]["template"]
    assert template["metadata"]["labels"] == {"slm-deploy.io/gpu-pool": "t4"}
    assert template["spec"]["taints"] == [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    assert {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["Standard_NC8as_T4_v3"]} in (
        template["spec"]["requirements"]
    )
    assert template["spec"]["nodeClassRef"] == {"group": "karpenter.azure.com", "kind": "AKSNodeClass", "name": "t4"}
    assert node_class["spec"] == {"imageFamily": "Ubuntu", "gpu": {"mode": "Driver"}}
    assert validate_custom_resource(pool) == ("valid", "") == validate_custom_resource(node_class)
    cluster = _load(out / "_azure-native" / "containerservice.ManagedCluster--aks-cluster-cluster.yaml")["inputs"]
    assert cluster["nodeProvisioningProfile"] == {"mode": "Auto", "defaultNodePools": "None"}
    # AKS refuses autoscaled agent pools beside NAP: system and user pools run at their minCount.
    assert cluster["agentPoolProfiles"][0]["enableAutoScaling"] is False
    user = _load(out / "_azure-native" / "containerservice.AgentPool--aks-pool-user-agent-pool.yaml")["inputs"]
    assert user["enableAutoScaling"] is False and "maxCount" not in user
    assert not (out / "_azure-native" / "containerservice.AgentPool--aks-pool-t4-agent-pool.yaml").exists()
    deployment = _load(out / "slm-qwen3-small" / "deployment.apps--qwen3-small.yaml")
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"slm-deploy.io/gpu-pool": "t4"}


def test_a_node_pool_without_limits_is_refused_by_its_schema_too() -> None:
    unknown = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "t4"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "g", "kind": "k", "name": "n"}, "requirement": []}}},
    }
    status, message = validate_custom_resource(unknown)  # type: ignore[misc]
    assert status == "invalid" and "requirement" in message


def test_cost_reports_the_limits_as_the_maximum(root: Path) -> None:
    result = CliRunner().invoke(app, ["cost", "-s", "nap", "--root", str(root), "-f", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    # 0.94 USD/h x 730 = 686.20 a T4 node: 2 at min (the model's 2 replicas hold them), 3 at most (the limit).
    assert data["pools"]["t4"] == {"min": 1372.4, "max": 2058.6}
    (line,) = [x for x in data["lines"] if x["category"] == "nodes" and x["pool"] == "t4"]
    assert line["quantity"] == {"min": 2, "max": 3}


def test_a_node_pool_without_limits_has_no_priced_maximum() -> None:
    documents = [
        {
            "type": "azure-native:containerservice:ManagedCluster",
            "kind": "ManagedCluster",
            "metadata": {"name": "aks"},
            "inputs": {"location": "westeurope", "sku": {"tier": "Standard"}, "agentPoolProfiles": []},
        },
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "t4"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"slm-deploy.io/gpu-pool": "t4"}},
                    "spec": {
                        "requirements": [
                            {
                                "key": "node.kubernetes.io/instance-type",
                                "operator": "In",
                                "values": ["Standard_NC8as_T4_v3"],
                            }
                        ]
                    },
                }
            },
        },
    ]
    result = estimate("t", read_inventory(documents), price_table())
    (item,) = [x for x in result.unpriced_items() if x.pool == "t4"]
    assert item.category == "nodes" and "has no limits" in item.reason and not result.complete


@pytest.mark.parametrize(
    ("pool", "key", "words"),
    [
        ({"minCount": 1}, "slm-deploy:cluster.gpuPools[0].minCount", "set minCount: 0"),
        (
            {"sharing": {"mode": "mig", "profile": "MIG1g"}, "vmSize": "Standard_NC24ads_A100_v4"},
            "slm-deploy:cluster.gpuPools[0].sharing.mode",
            "MIG slices come from an agent pool's gpuInstanceProfile",
        ),
    ],
)
def test_bad_auto_pools_are_one_line_errors(root: Path, tmp_path: Path, pool: dict, key: str, words: str) -> None:  # type: ignore[type-arg]
    project = copy_project(root, tmp_path / "project")
    stack = project / "stacks" / "Pulumi.nap.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["slm-deploy:cluster"]["gpuPools"][0].update(pool)
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", "-s", "nap", "--root", str(project)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "Pulumi.nap.yaml" in line and key in line and words in line and "Traceback" not in result.output


def test_the_example_stack_passes_its_level_with_the_limits_rule_run(root: Path) -> None:
    import json

    result = CliRunner().invoke(app, ["check", "--stack", "nap", "--root", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["level"] == "staging" and report["summary"]["mandatoryViolations"] == 0
    # Judged on the cluster (defaultNodePools: None) and on the NodePool (its limits).
    statuses = [r["status"] for r in report["results"] if r["policyName"] == "aks-node-provisioning-limits"]
    assert statuses == ["pass", "pass"]
