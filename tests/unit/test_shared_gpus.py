"""Shared GPUs (docs/shared-gpus.md): a slice's memory for sizing, the resource pods request, the device plugin's
config, and a node's cost divided by its slices."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from infra.catalog import get_model
from infra.cli import app
from infra.components.aks.gpu_drivers import device_plugin_configs
from infra.config.cluster import GpuPool
from infra.cost.estimate import estimate
from infra.cost.inventory import read_inventory
from infra.cost.table import price_table
from infra.sizing import get_vm_size, size_model
from infra.sizing.slices import NoMigError, mig_shape, mig_slice, time_slice_shape
from tests.helpers import copy_project

A100 = get_vm_size("Standard_NC24ads_A100_v4")
A10 = get_vm_size("Standard_NV36ads_A10_v5")


def test_a_mig_slice_is_one_gpu_with_the_profile_memory() -> None:
    piece = mig_slice(A100, "MIG3g")
    assert (piece.name, piece.memory_gb, piece.per_gpu, piece.resource) == ("3g.40gb", 40, 2, "nvidia.com/mig-3g.40gb")
    assert mig_slice(get_vm_size("Standard_NC40ads_H100_v5"), "MIG1g").resource == "nvidia.com/mig-1g.12gb"
    shape = mig_shape(A100, "MIG1g")
    assert (shape.gpu_count, shape.gpu_memory_gb, shape.memory_share) == (1, 10, 1.0)
    with pytest.raises(NoMigError, match="NVIDIA A10 GPUs, which have no MIG"):
        mig_slice(A10, "MIG1g")


def test_a_time_slice_sees_the_whole_gpu_and_may_fill_its_share() -> None:
    arch = get_model("qwen3-1.7b").architecture()
    shared = size_model(arch, "bf16", 4096, 4, 0.9, time_slice_shape(A10, 2))
    whole = size_model(arch, "bf16", 4096, 4, 0.9, A10.name)
    assert shared.choice is not None and whole.choice is not None
    # 24 GB x 0.9 / 2 pods: each vLLM is told 0.45 of the card, which it sees whole.
    assert shared.choice.available_per_gpu_gb == pytest.approx(10.8)
    assert (
        shared.vllm_settings["gpu_memory_utilization"] == 0.45 and whole.vllm_settings["gpu_memory_utilization"] == 0.9
    )
    assert shared.choice.needed_per_gpu_gb == whole.choice.needed_per_gpu_gb


def test_device_plugin_configs_follow_the_plugin_format() -> None:
    pools = [
        GpuPool.model_validate(
            {"name": "a10", "vmSize": A10.name, "sharing": {"mode": "timeSlicing", "replicasPerGpu": 4}}
        ),
        GpuPool.model_validate({"name": "a100", "vmSize": A100.name, "sharing": {"mode": "mig", "profile": "MIG2g"}}),
        GpuPool.model_validate({"name": "t4", "vmSize": "Standard_NC4as_T4_v3"}),
    ]
    configs = {key: yaml.safe_load(text) for key, text in device_plugin_configs(pools).items()}
    assert set(configs) == {"default", "a10", "a100"}
    assert configs["default"] == {"version": "v1", "flags": {"migStrategy": "none"}}
    assert configs["a100"]["flags"] == {"migStrategy": "mixed"}
    sliced = configs["a10"]["sharing"]["timeSlicing"]
    assert sliced["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert sliced["renameByDefault"] is True and sliced["failRequestsGreaterThanOne"] is True
    # Only shared pools' nodes pick an entry; the rest take the default.
    assert pools[0].node_labels["nvidia.com/device-plugin.config"] == "a10"
    assert "nvidia.com/device-plugin.config" not in pools[2].node_labels
    assert (pools[0].gpu_resource, pools[1].gpu_resource, pools[2].gpu_resource) == (
        "nvidia.com/gpu.shared",
        "nvidia.com/mig-2g.20gb",
        "nvidia.com/gpu",
    )


def _deployment(model: str, resource: str, replicas: int) -> dict:  # type: ignore[type-arg]
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
                    "nodeSelector": {"slm-deploy.io/gpu-pool": "a10"},
                    "containers": [
                        {"name": "vllm", "resources": {"requests": {"cpu": "4", "memory": "16Gi", resource: "1"}}}
                    ],
                }
            },
        },
    }


def test_cost_divides_a_time_sliced_node_by_its_slices() -> None:
    pool = GpuPool.model_validate(
        {
            "name": "a10",
            "vmSize": A10.name,
            "minCount": 1,
            "maxCount": 1,
            "sharing": {"mode": "timeSlicing", "replicasPerGpu": 4},
        }
    )
    documents = [
        {
            "type": "azure-native:containerservice:ManagedCluster",
            "kind": "ManagedCluster",
            "metadata": {"name": "aks"},
            "inputs": {"location": "westeurope", "sku": {"tier": "Standard"}, "agentPoolProfiles": []},
        },
        {
            "type": "azure-native:containerservice:AgentPool",
            "kind": "AgentPool",
            "metadata": {"name": "a10"},
            "inputs": {
                "agentPoolName": "a10",
                "vmSize": A10.name,
                "mode": "User",
                "enableAutoScaling": True,
                "minCount": 1,
                "maxCount": 1,
                "nodeLabels": pool.node_labels,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "nvidia-device-plugin-configs", "namespace": "kube-system"},
            "data": device_plugin_configs([pool]),
        },
        _deployment("small", "nvidia.com/gpu.shared", 3),
    ]
    inventory = read_inventory(documents)
    (a10,) = inventory.pools
    assert a10.slices_per_gpu == 4 and inventory.workloads[0].gpus == 1
    result = estimate("t", inventory, price_table())
    (share,) = [line for line in result.lines if line.model == "small"]
    # 3 replicas x 1 slice / (1 GPU x 4 slices a node) = 0.75 of the node; its neighbours pay the rest.
    assert share.quantity_min == share.quantity_max == 0.75


def test_a_time_sliced_pool_renders_shared_requests_and_a_divided_memory_share(root: Path, tmp_path: Path) -> None:
    project = copy_project(root, tmp_path / "project")
    stack = project / "stacks" / "Pulumi.prod.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["slm-deploy:cluster"]["gpuPools"][1]["sharing"] = {"mode": "timeSlicing", "replicasPerGpu": 2}
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "render"
    result = CliRunner().invoke(app, ["render", "-s", "prod", "--root", str(project), "-o", str(out)])
    assert result.exit_code == 0, result.output
    deployment = yaml.safe_load((out / "slm-qwen3-8b" / "deployment.apps--qwen3-8b.yaml").read_text())
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    assert server["resources"]["limits"]["nvidia.com/gpu.shared"] == "1"
    # prod's 0.95 of a GPU, halved: the two pods on one A100 each see the whole card.
    assert "--gpu-memory-utilization=0.475" in server["args"]
    config = yaml.safe_load((out / "kube-system" / "configmap--nvidia-device-plugin-configs.yaml").read_text())
    assert yaml.safe_load(config["data"]["a100"])["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 2
