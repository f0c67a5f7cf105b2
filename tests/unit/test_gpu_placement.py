"""GPU placement on existing clusters: the node label is the stack's, and a GPU count must fit `gpu.vmSize`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra import gpu
from infra.cli import app
from infra.config.cluster import AksCluster, ExistingCluster
from infra.config.loader import StackConfigError, validate_stack_config
from infra.plan.engine import run_program
from infra.platform import deploy
from tests.aks.aks_cases import aks_config
from tests.conftest import ROOT
from tests.helpers import one, pod_spec


def stack(cluster: dict[str, Any] | None = None, **gpu_config: Any) -> dict[str, Any]:
    return {
        "environment": "dev",
        "kubernetesVersion": "1.35",
        "cluster": cluster or {"mode": "existing"},
        "models": [{"name": "chat", "engine": "vllm", "modelId": "Qwen/Qwen3-4B", "gpu": {"count": 1, **gpu_config}}],
    }


def stack_file(cluster: str, gpu_line: str) -> str:
    return f"""config:
  slm-deploy:environment: dev
  slm-deploy:cluster:
{cluster}
  slm-deploy:models:
    - name: chat
      engine: vllm
      modelId: Qwen/Qwen3-4B
      gpu: {gpu_line}
"""


def rendered_pod(values: dict[str, Any]) -> dict[str, Any]:
    config = validate_stack_config(values, "test")
    run = run_program(lambda: deploy(config), "test", False)
    return pod_spec(one(run.resources, "Deployment", "chat-deployment"))


def test_the_default_label_is_the_one_aks_pools_carry() -> None:
    cluster = ExistingCluster()
    assert cluster.gpu_node_label == gpu.POOL_LABEL == aks_config().gpu_node_label
    pool = aks_config().pool("a100")
    assert pool is not None and cluster.gpu_node_selector("a100") == pool.node_labels
    spec = rendered_pod(stack(pool="gpu"))
    assert spec["nodeSelector"] == {gpu.POOL_LABEL: "gpu"}


def test_an_existing_cluster_names_its_own_gpu_node_label() -> None:
    label = "kubernetes.azure.com/agentpool"
    spec = rendered_pod(stack({"mode": "existing", "gpuNodeLabel": label}, pool="gpunp"))
    assert spec["nodeSelector"] == {label: "gpunp"}
    # The taints to tolerate do not depend on the label.
    assert spec["tolerations"] == [{k: v for k, v in vars(t).items() if v is not None} for t in gpu.tolerations()]


def test_cpu_models_select_no_node_whatever_the_label() -> None:
    values = stack({"mode": "existing", "gpuNodeLabel": "example.com/pool"})
    values["models"][0] = {"name": "chat", "engine": "ollama", "modelId": "qwen3:0.6b"}
    spec = rendered_pod(values)
    assert "nodeSelector" not in spec and "tolerations" not in spec


def test_aks_pools_keep_the_stack_label() -> None:
    cluster = aks_config()
    assert isinstance(cluster, AksCluster)
    for pool in cluster.gpu_pools:
        assert cluster.gpu_node_selector(pool.name) == pool.node_labels == gpu.pool_node_labels(pool.name)


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        ("gpu pool", "gpuNodeLabel 'gpu pool' is not a label key"),
        ("-pool", "gpuNodeLabel '-pool' is not a label key"),
        ("Example.com/pool", "its prefix 'Example.com'"),
        ("example.com/", "its name part is empty"),
    ],
)
def test_a_bad_label_key_is_a_config_error(label: str, problem: str, stack_dir: Path) -> None:
    text = stack_file(f"    mode: existing\n    gpuNodeLabel: '{label}'", "{count: 1}")
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Pulumi.bad.yaml: slm-deploy:cluster.gpuNodeLabel: " in lines[0]
    assert problem in lines[0]


def test_more_gpus_than_the_vm_size_has_is_a_config_error_on_existing_clusters(stack_dir: Path) -> None:
    text = stack_file("    mode: existing", "{count: 2, pool: gpunp, vmSize: Standard_NC24ads_A100_v4}")
    (stack_dir / "stacks" / "Pulumi.bad.yaml").write_text(text)
    result = CliRunner().invoke(app, ["validate", "--stack", "bad", "--root", str(stack_dir)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"error: {stack_dir}/stacks/Pulumi.bad.yaml: slm-deploy:models[0].gpu.count: model 'chat' asks for 2 GPUs "
        "per replica, but gpu.vmSize Standard_NC24ads_A100_v4 has 1 NVIDIA A100 PCIe per node (80 GB each): a "
        "replica never schedules; use a larger VM size or fewer GPUs"
    )


def test_the_default_cluster_is_checked_too() -> None:
    values = stack(count=4, vmSize="Standard_NC8as_T4_v3")
    del values["cluster"]
    with pytest.raises(StackConfigError) as error:
        validate_stack_config(values, "stacks/Pulumi.x.yaml")
    assert error.value.key_path == "slm-deploy:models[0].gpu.count"
    assert "has 1 NVIDIA T4 per node" in error.value.message


def test_an_unknown_vm_size_is_named_at_its_key() -> None:
    with pytest.raises(StackConfigError) as error:
        validate_stack_config(stack(vmSize="Standard_NC24ads_A100"), "stacks/Pulumi.x.yaml")
    assert error.value.key_path == "slm-deploy:models[0].gpu.vmSize"
    assert "unknown GPU VM size 'Standard_NC24ads_A100' (did you mean" in error.value.message


@pytest.mark.parametrize(
    ("gpu_config", "valid"),
    [
        ({"count": 4, "vmSize": "Standard_NC96ads_A100_v4"}, True),
        ({"count": 2, "vmSize": "Standard_NC48ads_A100_v4"}, True),
        ({"count": 2, "vmSize": "standard_nc24ads_a100_v4"}, False),  # case-insensitive, as Azure
        ({"count": 8}, True),  # no VM size: nothing to check against
    ],
)
def test_counts_within_the_vm_size_are_valid(gpu_config: dict[str, Any], valid: bool) -> None:
    values = stack(**gpu_config)
    if valid:
        validate_stack_config(values, "test")
    else:
        with pytest.raises(StackConfigError, match=r"gpu\.count: model 'chat' asks for 2 GPUs"):
            validate_stack_config(values, "test")


def test_aks_pools_are_still_checked_against_the_pool() -> None:
    values = stack(aks_config().model_dump(by_alias=True, mode="json"), count=2, pool="a100")
    values["kubernetesVersion"] = values["cluster"]["kubernetesVersion"]
    with pytest.raises(StackConfigError, match=r"models\[0\]\.gpu\.count: .*pool 'a100'"):
        validate_stack_config(values, "test")


def _readme_cluster_section() -> str:
    # The clusters page of the docs site (moved out of the README).
    return (ROOT / "docs" / "clusters.md").read_text(encoding="utf-8")


def test_the_readme_shows_the_label_and_taint_commands() -> None:
    section = _readme_cluster_section()
    assert gpu.label_command("<pool>") in section
    assert gpu.label_command("<pool>") == "kubectl label nodes <node> slm-deploy.io/gpu-pool=<pool>"
    assert gpu.taint_command() in section
    assert gpu.taint_command() == "kubectl taint nodes <node> sku=gpu:NoSchedule"
    assert "gpuNodeLabel" in section


def test_the_readme_example_is_valid() -> None:
    import yaml

    section = _readme_cluster_section()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", section, flags=re.S) if "gpuNodeLabel" in b)
    config = yaml.safe_load(block)
    values = {key.removeprefix("slm-deploy:"): value for key, value in config.items()}
    parsed = validate_stack_config({"environment": "dev", **values}, "README.md")
    assert isinstance(parsed.cluster, ExistingCluster)
    assert parsed.cluster.gpu_node_selector(parsed.models[0].gpu.pool) == {"kubernetes.azure.com/agentpool": "gpunp"}
