"""The plan and validate commands, for people and for machines."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from infra.cli import app


def test_validate_reference_stacks(root: Path) -> None:
    for stack in ("dev", "staging", "prod"):
        result = CliRunner().invoke(app, ["validate", "--stack", stack, "--root", str(root)])
        assert result.exit_code == 0, result.output
        assert f"Pulumi.{stack}.yaml: valid" in result.stdout


def test_plan_text_shows_tree_and_counts(root: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "--stack", "prod", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "slm-deploy:serving:ModelServer" in result.stdout
    assert "Resources by type" in result.stdout
    assert "protected" in result.stdout


def test_plan_json_records_inputs_and_options(root: Path) -> None:
    result = CliRunner().invoke(
        app, ["plan", "--stack", "prod", "--root", str(root), "--format", "json", "--mode", "update"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["mode"] == "update"
    assert plan["counts"]["kubernetes:apps/v1:Deployment"] == 3
    caches = [r for r in plan["resources"] if r["type"] == "kubernetes:core/v1:PersistentVolumeClaim"]
    assert caches and all(r["protect"] for r in caches)
    deployment = next(r for r in plan["resources"] if r["type"] == "kubernetes:apps/v1:Deployment")
    # prod runs on the AKS cluster it creates: the provider is built from that cluster's kubeconfig.
    assert deployment["provider"].endswith("pulumi:providers:kubernetes::aks-cluster-kubernetes")
    assert deployment["parent"].endswith(
        "slm-deploy:serving:ModelServer::" + deployment["name"].removesuffix("-deployment")
    )
    assert any(d.endswith("-namespace") for d in deployment["dependsOn"])
    assert "status" in deployment["placeholderOutputs"]


def test_existing_cluster_stacks_create_nothing_on_azure(root: Path) -> None:
    for stack in ("dev", "staging"):
        result = CliRunner().invoke(app, ["plan", "--stack", stack, "--root", str(root), "--format", "json"])
        types = json.loads(result.stdout)["counts"]
        assert not [t for t in types if t.startswith("azure-native:")], stack


def test_aks_stack_plan_shows_cluster_pools_identity_and_addons(root: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "--stack", "prod", "--root", str(root), "--format", "json"])
    plan = json.loads(result.stdout)
    (cluster,) = [r for r in plan["resources"] if r["type"] == "azure-native:containerservice:ManagedCluster"]
    inputs = cluster["inputs"]
    assert inputs["aadProfile"]["enableAzureRBAC"] is True and inputs["disableLocalAccounts"] is True
    assert inputs["oidcIssuerProfile"]["enabled"] is True
    assert inputs["securityProfile"]["workloadIdentity"]["enabled"] is True
    assert inputs["addonProfiles"]["azureKeyvaultSecretsProvider"]["enabled"] is True
    assert inputs["identity"]["type"]
    pools = [r["inputs"]["agentPoolName"] for r in plan["resources"] if r["type"].endswith(":AgentPool")]
    assert {"a10", "a100", "t4"} <= set(pools)
    assert cluster["protect"] is True
