"""The plan and validate commands, for people and for machines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
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
    assert {"a10", "a100"} <= set(pools)  # prod's small models share the a100s' MIG slices (no t4 pool)
    assert cluster["protect"] is True


FORMAT_COMMANDS = {
    "plan": ["plan", "--stack", "dev"],
    "render": ["render", "--stack", "dev", "--out", "out"],
    "check": ["check", "--stack", "dev"],
    "diff": ["diff", "--stack", "dev", "--base", "HEAD"],
    "size": ["size", "qwen3-8b"],
    "verify": ["verify", "--stack", "dev"],
    "bench": ["bench", "--url", "http://127.0.0.1:9/v1"],
}


@pytest.mark.parametrize("command", sorted(FORMAT_COMMANDS))
def test_every_format_is_a_typed_choice_refused_in_one_line(command: str, root: Path) -> None:
    """The real console script: a format outside the command's choices is one error line, exit 2."""
    args = (
        [*FORMAT_COMMANDS[command], "--root", str(root)]
        if command not in ("size", "bench")
        else FORMAT_COMMANDS[command]
    )
    done = subprocess.run(
        [sys.executable, "-c", "from infra.cli import main; main()", *args, "--format", "xml"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for '--format'"), done.stderr
    assert "'xml'" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["init-ci", "gitlab"], "error: Invalid value for 'provider'"),
        (["size", "qwen3-8b", "--precision", "int3"], "error: Invalid value for '--precision'"),
        (["plan", "--stack", "dev", "--bogus"], "error: No such option: --bogus"),
        (["plan"], "error: Missing option '--stack'"),
    ],
)
def test_bad_arguments_take_the_same_error_path(args: list[str], message: str, root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from infra.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
