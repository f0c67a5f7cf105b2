"""The `cluster` stack config: modes, secure defaults, and a clear message for every refused combination."""

from __future__ import annotations

from typing import Any

import pytest
from aks_cases import aks_config
from pydantic import TypeAdapter, ValidationError

from infra import gpu
from infra.config.base import KeyPathError
from infra.config.cluster import (
    AksCluster,
    ClusterConfig,
    ExistingCluster,
    GpuPool,
    check_cluster,
)
from infra.config.model import ModelConfig
from infra.sizing.vm_sizes import get_vm_size

CLUSTER: TypeAdapter[ExistingCluster | AksCluster] = TypeAdapter(ClusterConfig)


def model(name: str, count: int, pool: str, replicas: int = 1) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": name,
            "engine": "vllm",
            "modelId": "org/model",
            "replicas": replicas,
            "gpu": {"count": count, "pool": pool},
            "cache": {"accessMode": "ReadWriteMany"},
        }
    )


def check(config: AksCluster, environment: str = "prod", models: list[ModelConfig] | None = None) -> None:
    check_cluster(config, environment=environment, kubernetes_version="1.31", models=models or [])


def key_path_error(
    config: AksCluster, environment: str = "prod", models: list[ModelConfig] | None = None
) -> KeyPathError:
    with pytest.raises(KeyPathError) as caught:
        check(config, environment, models)
    return caught.value


def validation_error(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        aks_config(**overrides)
    return str(caught.value)


def test_modes_and_defaults() -> None:
    existing = CLUSTER.validate_python({"mode": "existing", "context": "kind-dev"})
    assert isinstance(existing, ExistingCluster) and existing.context == "kind-dev"
    aks = CLUSTER.validate_python(
        {"mode": "aks", "name": "c", "resourceGroup": "rg", "location": "westeurope", "kubernetesVersion": "1.31"}
    )
    assert isinstance(aks, AksCluster)
    assert aks.context is None
    assert aks.existing_resource_group is False
    assert (aks.upgrade_channel, aks.node_os_upgrade_channel) == ("stable", "NodeImage")
    assert aks.api_server.private is False and aks.api_server.authorized_ip_ranges == []
    assert aks.system_pool.vm_size == "Standard_D4ds_v5"
    assert (aks.system_pool.min_count, aks.system_pool.max_count) == (2, 3)
    assert aks.system_pool.only_critical_addons is True
    assert aks.sku_tier == "Standard"
    with pytest.raises(ValidationError, match="extra"):
        CLUSTER.validate_python({"mode": "existing", "kubeconfig": "x"})
    with pytest.raises(ValidationError):
        CLUSTER.validate_python({"mode": "eks"})


def test_every_field_is_documented() -> None:
    for cls in (ExistingCluster, AksCluster, GpuPool):
        for field_name, info in cls.model_fields.items():
            assert info.description, f"{cls.__name__}.{field_name}"


def test_pool_taint_and_labels_come_from_infra_gpu() -> None:
    pool = aks_config().gpu_pools[0]
    assert pool.taint == gpu.pool_taint()
    assert pool.node_labels == gpu.pool_node_labels(pool.name)


def test_vm_size_table() -> None:
    assert get_vm_size("standard_nc24ads_a100_v4") is get_vm_size("Standard_NC24ads_A100_v4")
    expected = {
        "Standard_NC4as_T4_v3": (1, 16),
        "Standard_NC64as_T4_v3": (4, 16),
        "Standard_NV36ads_A10_v5": (1, 24),
        "Standard_NC24ads_A100_v4": (1, 80),
        "Standard_NC96ads_A100_v4": (4, 80),
        "Standard_NC40ads_H100_v5": (1, 94),
        "Standard_NC80adis_H100_v5": (2, 94),
    }
    for name, (gpus, memory) in expected.items():
        size = get_vm_size(name)
        assert (size.gpu_count, size.gpu_memory_gb) == (gpus, memory)


def test_a_valid_prod_cluster_passes() -> None:
    config = aks_config()
    check(config, models=[model("chat", 1, "a100", replicas=3), model("small", 4, "t4")])


def test_spot_is_refused_in_prod() -> None:
    config = aks_config(gpuPools=[{"name": "gpu", "vmSize": "Standard_NC4as_T4_v3", "spot": True}])
    error = key_path_error(config)
    assert error.path == ("cluster", "gpuPools", 0, "spot")
    assert "spot" in error.message and "prod" in error.message
    check(config, environment="dev")


def test_scale_to_zero_is_refused_in_prod() -> None:
    config = aks_config(gpuPools=[{"name": "gpu", "vmSize": "Standard_NC4as_T4_v3", "minCount": 0}])
    error = key_path_error(config)
    assert error.path == ("cluster", "gpuPools", 0, "minCount")
    assert "scale to zero" in error.message
    check(config, environment="staging")


def test_pool_name_too_long() -> None:
    message = validation_error(gpuPools=[{"name": "a100pool12345", "vmSize": "Standard_NC24ads_A100_v4"}])
    assert "'a100pool12345' is not an AKS agent pool name" in message
    assert "at most 12" in message
    assert "not an AKS agent pool name" in validation_error(
        gpuPools=[{"name": "A100", "vmSize": "Standard_NC24ads_A100_v4"}]
    )


def test_unknown_vm_size() -> None:
    message = validation_error(gpuPools=[{"name": "gpu", "vmSize": "Standard_NC24ads_A100_v5"}])
    assert "unknown GPU VM size 'Standard_NC24ads_A100_v5'" in message
    assert "did you mean Standard_NC24ads_A100_v4" in message


def test_model_needs_more_gpus_than_the_vm_has() -> None:
    error = key_path_error(aks_config(), models=[model("chat", 1, "a100"), model("big", 2, "a100")])
    assert error.path == ("models", 1, "gpu", "count")
    assert "'big'" in error.message and "'a100'" in error.message
    assert "Standard_NC24ads_A100_v4" in error.message and "has 1" in error.message and "80 GB" in error.message


def test_model_names_an_unknown_pool() -> None:
    error = key_path_error(aks_config(), models=[model("chat", 1, "h100")])
    assert error.path == ("models", 0, "gpu", "pool")
    assert "'chat'" in error.message and "'h100'" in error.message and "a100, t4" in error.message


def test_models_must_fit_the_pool_at_max_replicas() -> None:
    # a100: at most 3 nodes x 1 GPU; 2 + 2 replicas of 1 GPU need 4.
    error = key_path_error(aks_config(), models=[model("one", 1, "a100", replicas=2), model("two", 1, "a100", 2)])
    assert error.path == ("models", 1, "gpu", "count")
    assert "need up to 4 GPUs" in error.message and "at most 3" in error.message and "maxCount" in error.message


def test_cpu_models_need_no_pool() -> None:
    cpu_model = ModelConfig.model_validate({"name": "tiny", "engine": "ollama", "modelId": "qwen3:0.6b"})
    check(aks_config(gpuPools=[]), models=[cpu_model])


def test_public_api_server_is_refused_in_prod() -> None:
    config = aks_config(apiServer={})
    error = key_path_error(config)
    assert error.path == ("cluster", "apiServer")
    assert "private: true" in error.message and "authorizedIpRanges" in error.message
    check(config, environment="dev")
    check(aks_config(apiServer={"private": True}))


def test_api_server_ranges() -> None:
    assert "opens the API server to the internet" in validation_error(apiServer={"authorizedIpRanges": ["0.0.0.0/0"]})
    assert "not a CIDR block" in validation_error(apiServer={"authorizedIpRanges": ["my-office"]})
    assert "do not apply to a private cluster" in validation_error(
        apiServer={"private": True, "authorizedIpRanges": ["203.0.113.0/24"]}
    )


def test_kubernetes_version_matches_the_stack() -> None:
    error = key_path_error(aks_config(kubernetesVersion="1.30"))
    assert error.path == ("cluster", "kubernetesVersion")
    check(aks_config(kubernetesVersion="1.31.5"))


def test_gpu_drivers_are_not_mixed() -> None:
    message = validation_error(
        gpuPools=[
            {"name": "a", "vmSize": "Standard_NC4as_T4_v3", "gpuDriver": "install"},
            {"name": "b", "vmSize": "Standard_NC4as_T4_v3", "gpuDriver": "none"},
        ]
    )
    assert "mix gpuDriver" in message


def test_pool_names_are_unique_and_bounds_ordered() -> None:
    assert "already used" in validation_error(gpuPools=[{"name": "user", "vmSize": "Standard_NC4as_T4_v3"}])
    assert "minCount 3 is above maxCount 2" in validation_error(
        gpuPools=[{"name": "g", "vmSize": "Standard_NC4as_T4_v3", "minCount": 3, "maxCount": 2}]
    )


def test_network_ranges() -> None:
    assert "is not inside vnetCidr" in validation_error(network={"nodeSubnetCidr": "192.168.0.0/24"})
    assert "podCidr 10.224.0.0/16 overlaps vnetCidr" in validation_error(network={"podCidr": "10.224.0.0/16"})
    assert "dnsServiceIp" in validation_error(network={"dnsServiceIp": "10.1.0.10"})


def test_admin_groups_are_guids_and_channels_are_managed() -> None:
    assert "not an Entra object id" in validation_error(adminGroupObjectIds=["admins"])
    assert "upgradeChannel" in validation_error(upgradeChannel="none")
    with pytest.raises(ValidationError):
        aks_config(nodeOsUpgradeChannel="Unmanaged")
