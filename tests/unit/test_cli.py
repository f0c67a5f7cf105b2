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
